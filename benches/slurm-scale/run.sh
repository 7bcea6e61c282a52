#!/usr/bin/env bash
# camu-pipe and Snakemake (with snakemake-executor-plugin-slurm) on the same SLURM workload:
# N independent command stages that each sleep 0.5 s, submitted to the cluster that answers
# `sinfo` (scripts/slurm-localhost.sh starts one). For each tool: wall time, stages per minute,
# sbatch and squeue/scontrol/sacct calls per minute (counted through wrappers on PATH), and the
# head process's peak memory (/usr/bin/time -v). Then camu-pipe alone, killed with SIGKILL once
# half the stages have run, and run again: how many stages ran twice and how many never ran.
#
#   benches/slurm-scale/run.sh [N] [SNAKEMAKE] [POLL]
#
# N defaults to 400. SNAKEMAKE is a snakemake binary with the SLURM plugin installed (default:
# `snakemake` on PATH); without one its rows are left out. POLL is camu-pipe's --slurm-poll
# (default 5, its default). Build first: cargo build --release.
# Output: one Markdown table on stdout; the work directory is printed on stderr.
set -euo pipefail
n=${1:-400}
snakemake=${2:-snakemake}
poll=${3:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
camu=$root/target/release/camu-pipe
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

# The same workload for both tools.
{
  echo "stages:"
  echo "  s:"
  echo "    kind: command"
  echo "    matrix: {i: [$(seq -s, 0 $((n - 1)))]}"
  echo "    command: 'sleep 0.5; echo \${i} >> $work/execs.log; echo \${i} > \${out}/i.txt'"
} > "$work/p.yaml"
cat > "$work/Snakefile" <<EOF
rule all:
    input: expand("out/{i}.txt", i=range($n))
rule s:
    output: "out/{i}.txt"
    resources: cpus_per_task=1, mem_mb=100, runtime=5
    shell: "sleep 0.5; echo {wildcards.i} >> $work/execs-smk.log; echo {wildcards.i} > {output}"
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

# camu-pipe killed at half, then run again, on a fresh cache.
export CALLS=$work/calls-kill.log CAMU_CACHE_DIR=$work/cache-kill
: > "$CALLS"
: > "$work/execs.log"
"$camu" run p.yaml --executor slurm --jobs 64 --slurm-poll "$poll" >/dev/null 2>"$work/kill1.err" &
pid=$!
while [ "$(wc -l < "$work/execs.log")" -lt $((n / 2)) ]; do sleep 0.2; done
kill -9 $pid
wait $pid 2>/dev/null || true
"$camu" run p.yaml --executor slurm --jobs 64 --slurm-poll "$poll" --json > "$work/kill2.json" 2>"$work/kill2.err"
twice=$(sort -n "$work/execs.log" | uniq -d | wc -l)
ran=$(sort -n "$work/execs.log" | uniq | wc -l)
adopted=$(grep -c '"adopted batch job' "$work/kill2.json" || true)
echo
echo "kill -9 once $((n / 2)) of $n stages had run, then run again: $adopted jobs adopted, $twice stages executed twice, $((n - ran)) never executed."
