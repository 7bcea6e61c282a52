#!/usr/bin/env bash
# The whole test suite from a fresh machine: set-up, formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# A real single-node SLURM for the SLURM executor's tests (they skip when no cluster answers).
if [[ "${CI:-}" == true || "${CAMU_TEST_SLURM:-0}" == 1 ]]; then
  timeout 300 bash scripts/slurm-localhost.sh || echo "[test] no local SLURM cluster: its tests will be skipped" >&2
fi
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --release
