#!/usr/bin/env bash
# The main job from a fresh machine: set-up, a release build, then run a pipeline (default: the
# quickstart) and print its results table. Extra arguments go to `camu-pipe run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --quiet
pipeline="${CAMU_PIPELINE:-pipelines/quickstart.yaml}"
./target/release/camu-pipe run "$pipeline" "$@"
./target/release/camu-pipe report "$pipeline"
