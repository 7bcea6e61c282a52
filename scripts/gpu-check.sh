#!/usr/bin/env bash
# The prepared device check: one run on a CUDA machine, from a tree built on a CPU machine.
#
#   bash scripts/gpu-check.sh [OUT_DIR]        (or CAMU_GPU_CHECK_OUT; default gpu-check-out)
#
# Needs target/release/camu-pipe and camu-worker (built elsewhere and carried), data/fashion_mnist,
# and a torch 2.11.0 CUDA build importable by python3 (CAMU_TORCH_PYTHON picks another python).
# It points LD_LIBRARY_PATH at that torch's lib/, runs four small pipelines with the real binaries
# and prints one table, which it also writes with every log and record to OUT_DIR:
#   - reference CNN training images/s at batch 32 and 256 on the GPU;
#   - ResNet-18 (CIFAR stem) training images/s on the GPU;
#   - CaMU unlearning time, Fashion-MNIST random 10% and class 0, on the GPU;
#   - makespan of 4 one-epoch CNN trainings with `gpus: 0.25` (together) and `gpus: 1` (one by one);
#   - test accuracy of the same 3-epoch training on GPU and CPU (they should be within 1 point);
#   - the built-in finetune and the same method written in PyTorch (pipelines/methods/
#     finetune_torch.py) on the GPU: time, test accuracy, and the device the script ran on.
# CAMU_GPU_CHECK_CPU=1 runs the same pipelines on the CPU with tiny data, to test this script on a
# machine without a GPU (its figures mean nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(realpath -m "${1:-${CAMU_GPU_CHECK_OUT:-gpu-check-out}}")
mkdir -p "$out"
rm -f "$out/makespans.txt"
exec > >(tee "$out/gpu-check.log") 2>&1
bin=$(realpath target/release/camu-pipe)
[[ -x $bin && -x target/release/camu-worker ]] || { echo "build first: cargo build --release" >&2; exit 2; }
cpu=${CAMU_GPU_CHECK_CPU:-0}
if [[ $cpu == 1 ]]; then
  dev=cpu gpus="" limit="limit_train: 2000, limit_test: 500," rn_limit="limit_train: 300, limit_test: 100,"
  gpu_flag=(--gpus "")
else
  py=${CAMU_TORCH_PYTHON:-python3}
  torchlib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  echo "torch $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)') at $torchlib"
  export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  dev=cuda gpus=1 limit="" rn_limit="limit_train: 10000, limit_test: 2000,"
  export CAMU_PYTHON=$(command -v "$py")
  gpu_flag=(--gpus "${CAMU_GPU_ID:-0}")
fi
# The cache (datasets, models) stays out of OUT_DIR; its records and logs are copied there.
cache=${CAMU_GPU_CHECK_CACHE:-$(mktemp -d)/cache}
export CAMU_DATA_DIR=$(realpath data) CAMU_CACHE_DIR="$cache"
w="$out/pipelines"
mkdir -p "$w"
gres() { [[ $cpu == 1 ]] && echo 0 || echo "$1"; }

cat > "$w/speed.yaml" <<YAML
stages:
  data:
    kind: download
    with: {dataset: fashion_mnist, $limit}
  cnn:
    kind: train
    needs: [data]
    matrix: {batch: [32, 256]}
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {epochs: 2, batch_size: "\${batch}", device: $dev}
  resnet:
    kind: train
    needs: [data_small]
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {epochs: 1, arch: resnet18_cifar, device: $dev}
  # A smaller set for ResNet-18: its images/s needs no full epoch.
  data_small:
    kind: download
    with: {dataset: fashion_mnist, $rn_limit}
  split:
    kind: split
    needs: [data]
    matrix: {scenario: [random, class]}
    with: {scenario: "\${scenario}", fraction: 0.1, classes: [0]}
  camu:
    kind: unlearn
    needs: [data, split, cnn@batch=32]
    matrix: {scenario: [random, class]}
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {method: camu, original: cnn@batch=32, device: $dev}
  # The same method built in and written in PyTorch, from the same model and split.
  finetune:
    kind: unlearn
    needs: [data, split@scenario=random, cnn@batch=32]
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {method: finetune, original: cnn@batch=32, epochs: 3, device: $dev}
  finetune_torch:
    kind: unlearn
    needs: [data, split@scenario=random, cnn@batch=32]
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {method: {python: methods/finetune_torch.py}, original: cnn@batch=32, epochs: 3, device: $dev}
  eval:
    kind: evaluate
    needs: [data, split@scenario=random, "\${model}"]
    matrix: {model: [finetune, finetune_torch]}
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {model: "\${model}", device: $dev}
YAML
mkdir -p "$w/methods" && cp pipelines/methods/finetune_torch.py "$w/methods/"
cat > "$w/accuracy.yaml" <<YAML
stages:
  data:
    kind: download
    with: {dataset: fashion_mnist, $limit}
  on_gpu:
    kind: train
    needs: [data]
    resources: {cpus: 4, gpus: $(gres 1)}
    with: {epochs: 3, seed: 0, device: $dev}
  on_cpu:
    kind: train
    needs: [data]
    resources: {cpus: 12, gpus: 0}
    with: {epochs: 3, seed: 0, device: cpu}
YAML

# Resources are not part of a key: the two runs use different seeds so both really train.
for share in 0.25 1; do
  seeds="[1, 2, 3, 4]"; [[ $share == 1 ]] && seeds="[5, 6, 7, 8]"
  cat > "$w/pack-$share.yaml" <<YAML
stages:
  data:
    kind: download
    with: {dataset: fashion_mnist, $limit}
  t:
    kind: train
    needs: [data]
    matrix: {seed: $seeds}
    resources: {cpus: 2, gpus: $( [[ $cpu == 1 ]] && echo 0 || echo $share )}
    with: {epochs: 1, seed: "\${seed}", device: $dev}
YAML
done

run() { echo "== camu-pipe run $*"; "$bin" run "$@" "${gpu_flag[@]}" --keep-going || echo "(exit $?)"; }
run "$w/speed.yaml"
run "$w/accuracy.yaml" --cpus 16
# Data first, so the makespans time the trainings only.
"$bin" run "$w/pack-1.yaml" data >/dev/null 2>&1 || true
for share in 0.25 1; do
  s=$EPOCHREALTIME
  run "$w/pack-$share.yaml" --cpus 16
  e=$EPOCHREALTIME
  echo "$share $(python3 -c "print($e - $s)")" >> "$out/makespans.txt"
done
for p in speed accuracy pack-0.25 pack-1; do "$bin" status "$w/$p.yaml" --json > "$out/status-$p.json" || true; done
rm -rf "$out/records" "$out/logs" && cp -r "$cache/records" "$cache/logs" "$out/"
python3 - "$out" "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" <<'PY'
import json, os, sys
out, gpu = sys.argv[1], sys.argv[2] or "no GPU (CPU smoke run)"
def records(p):
    rows = json.load(open(f"{out}/status-{p}.json"))
    got = {}
    for r in rows:
        if r.get("key") and r["state"] == "cached":
            got[r["stage"]] = json.load(open(f"{out}/records/{r['key']}.json"))
    return got
speed, acc = records("speed"), records("accuracy")
def m(rec, stage, key):
    return (rec.get(stage) or {}).get("metrics", {}).get(key)
def fmt(v, unit=""):
    return "-" if v is None else (f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:.2f}{unit}")
mk = dict(l.split() for l in open(f"{out}/makespans.txt")) if os.path.exists(f"{out}/makespans.txt") else {}
ag, ac = m(acc, "on_gpu", "acc_test"), m(acc, "on_cpu", "acc_test")
def pair(a, b, f):
    return "-" if a is None or b is None else f"{f(a)} / {f(b)}"
ft = (speed.get("finetune_torch") or {}).get("metrics", {})
ft_dev = f"{ft['device']} (torch {ft.get('torch_version')})" if "device" in ft else "-"
rows = [
    ("reference CNN training, batch 32, images/s", fmt(m(speed, "cnn@batch=32", "images_per_s"))),
    ("reference CNN training, batch 256, images/s", fmt(m(speed, "cnn@batch=256", "images_per_s"))),
    ("ResNet-18 (CIFAR stem) training, batch 32, images/s", fmt(m(speed, "resnet", "images_per_s"))),
    ("CaMU unlearning, Fashion-MNIST random 10%, s", fmt(m(speed, "camu@scenario=random", "unlearn_time_s"))),
    ("CaMU unlearning, Fashion-MNIST class 0, s", fmt(m(speed, "camu@scenario=class", "unlearn_time_s"))),
    ("4 one-epoch CNN trainings, gpus: 0.25 (makespan, s)", fmt(float(mk["0.25"])) if "0.25" in mk else "-"),
    ("4 one-epoch CNN trainings, gpus: 1 (makespan, s)", fmt(float(mk["1"])) if "1" in mk else "-"),
    ("test accuracy after 3 epochs, GPU / CPU (same seed)",
     "-" if ag is None or ac is None else f"{ag*100:.2f}% / {ac*100:.2f}% ({'within' if abs(ag-ac) <= 0.01 else 'NOT within'} 1 point)"),
    ("finetune 3 epochs (random 10%), built-in / PyTorch script, s",
     pair(m(speed, "finetune", "unlearn_time_s"), m(speed, "finetune_torch", "unlearn_time_s"), fmt)),
    ("test accuracy after it, built-in / PyTorch script",
     pair(m(speed, "eval@model=finetune", "acc_test"), m(speed, "eval@model=finetune_torch", "acc_test"), lambda v: f"{v*100:.2f}%")),
    ("device the PyTorch script ran on (its record)", str(ft_dev)),
]
table = f"Device: {gpu}\n\n| measure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
open(f"{out}/table.md", "w").write(table)
print(table)
PY
