#!/usr/bin/env bash
# The main job from a fresh machine: set-up, a release build, then run a pipeline (default: the
# quickstart) and print its results table. Extra arguments go to `camu-pipe run`. Methods written in
# PyTorch run with $CAMU_PYTHON, by default the Python environment set-up provisions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --quiet
cache_home="${CAMU_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/camu-pipe}"
if [[ -z "${CAMU_PYTHON:-}" && -x "$cache_home/python-torch-2.11.0-cpu/bin/python" ]]; then
  export CAMU_PYTHON="$cache_home/python-torch-2.11.0-cpu/bin/python"
fi
pipeline="${CAMU_PIPELINE:-pipelines/quickstart.yaml}"
./target/release/camu-pipe run "$pipeline" "$@"
./target/release/camu-pipe report "$pipeline"
