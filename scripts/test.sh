#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# A real single-node SLURM for the SLURM executor's tests (they skip when no cluster answers).
if [[ "${CI:-}" == true || "${CAMU_TEST_SLURM:-0}" == 1 ]]; then
  timeout 300 bash scripts/slurm-localhost.sh || echo "[test] no local SLURM cluster: its tests will be skipped" >&2
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The engine builds and passes its tests with no libtorch anywhere in its dependency tree: camu-core,
# camu-lab and the command line without the `worker` feature (the engine's integration tests use
# command stages only). LIBTORCH points nowhere, so anything that tried to build against it fails.
for p in camu-core camu-lab; do
  if cargo tree -p "$p" -e normal,build,dev --prefix none | grep -qE '^(tch|torch-sys) '; then
    echo "[test] $p depends on libtorch" >&2; exit 1
  fi
done
if cargo tree -p camu-pipe --no-default-features -e normal,build,dev --prefix none | grep -qE '^(tch|torch-sys) '; then
  echo "[test] camu-pipe without the worker feature depends on libtorch" >&2; exit 1
fi
LIBTORCH=/nonexistent cargo test --release -p camu-core -p camu-lab
LIBTORCH=/nonexistent cargo test --release -p camu-pipe --no-default-features
# A method's defaults live once, in its parameter struct (crates/lab/src/methods/): a computation
# receives that struct and never reads `with` with a default of its own.
if grep -nE 'Params\(|\.(f64|usize|i64|str|bool|opt_f64|opt_i64|opt_str)\("' crates/torch/src/methods/*.rs; then
  echo "[test] a method computation above reads a parameter with a literal default" >&2; exit 1
fi
# What needs libtorch: camu-torch's tests, the worker's, and the tests that run ML stages.
cargo test --release -p camu-torch
cargo test --release -p camu-pipe --bins --test ml --test python --test external
# Only the ML worker links libtorch; the command line does not.
if ldd target/release/camu-pipe | grep -q libtorch; then
  echo "[test] target/release/camu-pipe links libtorch" >&2; exit 1
fi
ldd target/release/camu-worker | grep -q libtorch_cpu
