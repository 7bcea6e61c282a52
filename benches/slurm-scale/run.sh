#!/usr/bin/env bash
# camu-pipe and Snakemake (with snakemake-executor-plugin-slurm) on the same SLURM workload of
# command stages that each sleep 0.5 s, submitted to the cluster that answers `sinfo`
# (scripts/slurm-localhost.sh starts one; CAMU_SLURM_CPUS=32 gives it 32 slots for sleeping
# stages). For each tool: wall time, stages per minute, sbatch and squeue/scontrol/sacct calls
# per minute (counted through wrappers on PATH), and the head process's peak memory
# (/usr/bin/time -v). Then camu-pipe alone, killed with SIGKILL once half the stages have run, and
# run again: how many stages ran twice and how many never ran (SLURM_SCALE_KILL=0 leaves that out).
#
#   benches/slurm-scale/run.sh [N|paper] [SNAKEMAKE] [POLL]
#
# N independent stages (default 400), or `paper`: the DAG of pipelines/paper.yaml (4,166 stages,
# each with the needs of its stage there, read from `camu-pipe status --json`). Every stage asks
# for 1 CPU, 100 MB and 5 minutes in both tools. SNAKEMAKE is a snakemake binary with the SLURM
# plugin installed (default: `snakemake` on PATH); without one its rows are left out. POLL is
# camu-pipe's --slurm-poll (default 5, its default). Build first: cargo build --release
# (or set CAMU_PIPE to a camu-pipe binary).
# Output: one Markdown table on stdout; the work directory is printed on stderr.
set -euo pipefail
shape=${1:-400}
snakemake=${2:-snakemake}
poll=${3:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
camu=${CAMU_PIPE:-$root/target/release/camu-pipe}
[ -x "$camu" ] || { echo "build first: cargo build --release" >&2; exit 2; }
sinfo -h -o %T >/dev/null 2>&1 || { echo "no SLURM cluster answers sinfo" >&2; exit 2; }
work=$(mktemp -d /tmp/slurm-scale.XXXXXX)
echo "work directory: $work" >&2

# Wrappers that log each call of a SLURM command with its time, then run the real one.
mkdir -p "$work/bin"
for tool in sbatch squeue scontrol sacct; do
  real=$(command -v $tool || true)
  [ -n "$real" ] || continue
  printf '#!/bin/sh\necho "%s $(date +%%s.%%N)" >> "$CALLS"\nexec %s "$@"\n' "$tool" "$real" > "$work/bin/$tool"
  chmod +x "$work/bin/$tool"
done
export PATH="$work/bin:$PATH"

# The same workload for both tools: deps.json maps each stage to the stages it needs.
if [ "$shape" = paper ]; then
  (cd "$root" && "$camu" status pipelines/paper.yaml --json --cache "$work/empty") |
    python3 -c '
import json, sys
d = json.load(sys.stdin)
ids = {s["stage"]: "s%04d" % i for i, s in enumerate(d)}
json.dump({ids[s["stage"]]: [ids[n] for n in s["needs"]] for s in d}, sys.stdout)' > "$work/deps.json"
else
  python3 -c 'import json, sys; json.dump({"s%04d" % i: [] for i in range(int(sys.argv[1]))}, sys.stdout)' \
    "$shape" > "$work/deps.json"
fi
n=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$work/deps.json")
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
deps = json.load(open(f"{work}/deps.json"))
with open(f"{work}/p.yaml", "w") as f:
    f.write("defaults: {resources: {cpus: 1, mem: 100M, time: 5m}}\nstages:\n")
    for s, needs in deps.items():
        f.write(f"  {s}:\n    kind: command\n")
        if needs:
            f.write(f"    needs: [{', '.join(needs)}]\n")
        f.write(f"    command: 'sleep 0.5; echo {s} >> {work}/execs.log; echo {s} > ${{out}}/done.txt'\n")
PY
cat > "$work/Snakefile" <<EOF
import json
DEPS = json.load(open("$work/deps.json"))
rule all:
    input: expand("out/{s}.txt", s=DEPS)
rule s:
    input: lambda w: expand("out/{d}.txt", d=DEPS[w.s])
    output: "out/{s}.txt"
    resources: cpus_per_task=1, mem_mb=100, runtime=5
    shell: "sleep 0.5; echo {wildcards.s} >> $work/execs-smk.log; echo {wildcards.s} > {output}"
EOF

row() { # tool, calls file, time -v file, wall seconds, stages
  local tool=$1 calls=$2 tv=$3 wall=$4 stages=$5
  local mem sb sq sc sa
  mem=$(awk -F': ' '/Maximum resident/ {print $2}' "$tv")
  sb=$(grep -c '^sbatch ' "$calls" || true)
  sq=$(grep -c '^squeue ' "$calls" || true)
  sc=$(grep -c '^scontrol ' "$calls" || true)
  sa=$(grep -c '^sacct ' "$calls" || true)
  awk -v t="$tool" -v w="$wall" -v s="$stages" -v sb="$sb" -v sq="$sq" -v sc="$sc" -v sa="$sa" -v m="$mem" 'BEGIN {
    printf "| %s | %d | %.0f | %.1f | %d (%.1f/min) | %d (%.1f/min) | %d | %d | %.0f |\n",
      t, s, w, s / w * 60, sb, sb / w * 60, sq, sq / w * 60, sc, sa, m / 1024 }'
}

echo "| tool | stages | wall (s) | stages/min | sbatch calls | squeue calls | scontrol calls | sacct calls | head peak RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"

# camu-pipe, whole run.
cd "$work"
export CALLS=$work/calls-camu.log CAMU_CACHE_DIR=$work/cache
: > "$CALLS"
t0=$(date +%s.%N)
/usr/bin/time -v -o "$work/time-camu.txt" "$camu" run p.yaml --executor slurm --jobs 64 --slurm-poll "$poll" >/dev/null 2>"$work/camu.err"
t1=$(date +%s.%N)
row camu-pipe "$CALLS" "$work/time-camu.txt" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$n"

# Snakemake, whole run.
if command -v "$snakemake" >/dev/null 2>&1; then
  export CALLS=$work/calls-smk.log
  : > "$CALLS"
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time-smk.txt" "$snakemake" --executor slurm --jobs 64 \
    --slurm-status-command squeue --default-resources slurm_partition=debug \
    --latency-wait 30 --quiet all >"$work/smk.out" 2>"$work/smk.err" || echo "snakemake failed: see $work/smk.err" >&2
  t1=$(date +%s.%N)
  row snakemake "$CALLS" "$work/time-smk.txt" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$(ls out 2>/dev/null | wc -l)"
fi

[ "${SLURM_SCALE_KILL:-1}" = 0 ] && exit 0

# camu-pipe killed at half, then run again, on a fresh cache.
export CALLS=$work/calls-kill.log CAMU_CACHE_DIR=$work/cache-kill
: > "$CALLS"
: > "$work/execs.log"
"$camu" run p.yaml --executor slurm --jobs 64 --slurm-poll "$poll" >/dev/null 2>"$work/kill1.err" &
pid=$!
while [ "$(wc -l < "$work/execs.log")" -lt $((n / 2)) ]; do
  kill -0 $pid 2>/dev/null || { echo "camu-pipe ended before half the stages ran: $work/kill1.err" >&2; exit 1; }
  sleep 0.2
done
kill -9 $pid
wait $pid 2>/dev/null || true
"$camu" run p.yaml --executor slurm --jobs 64 --slurm-poll "$poll" --json > "$work/kill2.json" 2>"$work/kill2.err"
twice=$(sort "$work/execs.log" | uniq -d | wc -l)
ran=$(sort "$work/execs.log" | uniq | wc -l)
adopted=$(grep -c '"adopted batch job' "$work/kill2.json" || true)
echo
echo "kill -9 once $((n / 2)) of $n stages had run, then run again: $adopted jobs adopted, $twice stages executed twice, $((n - ran)) never executed."
