#!/usr/bin/env bash
# Whole-process benchmark of the camu-pipe binary next to DVC and Snakemake on the same trivial
# workloads, every row measured by hyperfine in this one invocation (process start included).
#
#   bash benches/cli/run.sh [OUT_DIR]      (default: target/bench-cli)
#
# Needs hyperfine (`cargo install hyperfine --locked`), and for the peers `pip install dvc
# snakemake`; a peer that is not installed is left out of the table. CAMU_BENCH_RUNS sets the
# runs per measurement (default 10; first runs of 500 stages use 3, DVC's 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=$(realpath -m "${1:-target/bench-cli}")
runs=${CAMU_BENCH_RUNS:-10}
command -v hyperfine >/dev/null || { echo "hyperfine not found: cargo install hyperfine --locked" >&2; exit 2; }
cargo build --release --quiet --bin camu-pipe
camu=$(realpath target/release/camu-pipe)
dvc=$(command -v dvc || true)
smk=$(command -v snakemake || true)
rm -rf "$out" && mkdir -p "$out/json"
w="$out/work"
python3 benches/cli/make-workloads.py "$w"
[[ -n "$dvc" ]] && for d in chain wide; do (cd "$w/dvc/$d" && "$dvc" init --no-scm -q); done

# bench NAME RUNS [hyperfine args...]: one row, its commands measured side by side.
bench() {
  local name=$1 n=$2
  shift 2
  echo "== $name" >&2
  hyperfine -N --style basic --runs "$n" --export-json "$out/json/$name.json" "$@" >&2
}
cr() { echo "$camu run $w/camu/$1/pipeline.yaml --cache $w/camu/$1/cache"; }
dr() { echo "bash -c 'cd $w/dvc/$1 && $dvc repro -q'"; }
sr() { echo "bash -c 'cd $w/snakemake/$1 && $smk --cores 2 --quiet all'"; }
peers() { # peers WORKLOAD: the peer commands for hyperfine, with names
  local a=()
  [[ -n "$dvc" ]] && a+=(-n dvc "$(dr "$1")")
  [[ -n "$smk" ]] && a+=(-n snakemake "$(sr "$1")")
  printf '%s\0' "${a[@]}"
}
clean_camu() { echo "rm -rf $w/camu/$1/cache"; }
clean_dvc() { echo "bash -c 'cd $w/dvc/$1 && rm -rf o*.txt dvc.lock .dvc/cache .dvc/tmp'"; }
clean_smk() { echo "bash -c 'cd $w/snakemake/$1 && rm -rf o*.txt .snakemake'"; }

bench version "$runs" --warmup 3 -n camu-pipe "$camu --version"
for wl in chain wide; do
  # First runs: every stage executes (an empty cache before each run).
  n=$runs; [[ $wl == wide ]] && n=3
  bench "first-$wl" "$n" --prepare "$(clean_camu $wl)" -n camu-pipe "$(cr $wl)"
  [[ -n "$smk" ]] && bench "first-$wl-snakemake" "$n" --prepare "$(clean_smk $wl)" -n snakemake "$(sr $wl)"
  [[ -n "$dvc" ]] && { [[ $wl == wide ]] && n=1; bench "first-$wl-dvc" "$n" --prepare "$(clean_dvc $wl)" -n dvc "$(dr $wl)"; }
  # No-op re-runs: everything up to date (the first runs above left it so).
  mapfile -d '' p < <(peers $wl)
  bench "noop-$wl" "$runs" --warmup 2 -n camu-pipe "$(cr $wl)" "${p[@]}"
done
/usr/bin/time -f "%M" "$camu" --version 2>"$out/version-rss-kib" >/dev/null
python3 benches/cli/table.py "$out" | tee "$out/table.md"
