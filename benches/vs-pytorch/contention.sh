#!/usr/bin/env bash
# A 2-thread training stage (1 epoch of Fashion-MNIST) on a quiet machine and beside a 2-thread
# CPU hog, with the adaptive thread count on and off: images/s, the share of quiet throughput kept,
# and the stage's user and system CPU time (the whole camu-pipe process tree, /usr/bin/time).
# Usage: benches/vs-pytorch/contention.sh [EPOCHS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pipe="$root/target/release/camu-pipe"
epochs="${1:-1}"
work="$(mktemp -d)"
trap 'pkill -f "camu-contention-hog" || true; rm -rf "$work"' EXIT
export CAMU_CACHE_DIR="$work/cache"
cat > "$work/p.yaml" <<EOF
stages:
  data: {kind: download, with: {dataset: fashion_mnist}}
  original:
    kind: train
    needs: [data]
    with: {epochs: $epochs, seed: 0}
    resources: {cpus: 2}
EOF
"$pipe" run "$work/p.yaml" data > /dev/null 2>&1

hog() {
  for _ in 1 2; do
    bash -c 'exec -a camu-contention-hog bash -c "while :; do :; done"' &
  done
  sleep 1
}

# One training run: prints "IMAGES_PER_S USER_S SYS_S".
train() {
  /usr/bin/time -f "%U %S" -o "$work/time" "$pipe" run "$work/p.yaml" --force original --cpus 2 > /dev/null 2>&1
  local ips
  ips=$(grep -h "done loss" "$work"/cache/logs/*.log | tail -1 | sed -E 's/.* ([0-9]+) img\/s.*/\1/')
  echo "$ips $(cat "$work/time")"
}

printf '| adaptive threads | load | images/s | kept of quiet | user CPU (s) | system CPU (s) | system / user |\n'
printf '|---|---|---|---|---|---|---|\n'
for adaptive in 1 0; do
  export CAMU_ADAPTIVE_THREADS=$adaptive
  read -r q_ips q_user q_sys <<< "$(train)"
  hog
  read -r h_ips h_user h_sys <<< "$(train)"
  pkill -f camu-contention-hog || true
  sleep 1
  label=$([[ $adaptive == 1 ]] && echo on || echo off)
  awk -v a="$label" -v qi="$q_ips" -v qu="$q_user" -v qs="$q_sys" -v hi="$h_ips" -v hu="$h_user" -v hs="$h_sys" 'BEGIN {
    printf "| %s | quiet | %d | 100%% | %.1f | %.2f | %.1f%% |\n", a, qi, qu, qs, 100 * qs / qu
    printf "| %s | beside a 2-thread hog | %d | %.0f%% | %.1f | %.2f | %.1f%% |\n", a, hi, 100 * hi / qi, hu, hs, 100 * hs / hu
  }'
done
