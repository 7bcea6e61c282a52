#!/usr/bin/env python3
"""camu-pipe against a plain PyTorch loop, side by side in one invocation.

For each piece of work (training the original model, CaMU on class 0, CaMU on a random 10%), runs
the PyTorch implementation (reference.py) and camu-pipe's stage alternately, REPS times each
(A B A B ...), and prints the medians and the ratios. Both use THREADS threads, one at a time.

Usage: benches/vs-pytorch/run.py [--reps 2] [--epochs 3] [--threads 2] [--only train,camu-class]
Needs: target/release/camu-pipe and camu-worker built, python3 with torch 2.11 and torchvision,
Fashion-MNIST's idx files (Debian's dataset-fashion-mnist, or --raw DIR).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PIPE = os.path.join(ROOT, "target", "release", "camu-pipe")

PIPELINE = """\
# The work of the side-by-side benchmark, with the reference's settings.
stages:
  data:
    kind: download
    with: {{dataset: fashion_mnist}}
  original:
    kind: train
    needs: [data]
    with: {{epochs: {epochs}, seed: 0}}
    resources: {{cpus: {threads}}}
  split:
    kind: split
    needs: [data]
    matrix: {{scenario: [random, class]}}
    with: {{scenario: "${{scenario}}", fraction: 0.1, classes: [0], seed: 0}}
  camu:
    kind: unlearn
    needs: [data, split, original]
    matrix: {{scenario: [random, class]}}
    with: {{method: camu, seed: 0}}
    resources: {{cpus: {threads}}}
"""


def sh(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def camu_pipe(work, pipeline, cache, threads):
    """Runs one stage again; returns its loop time and its process's wall time."""
    stage = {"train": "original", "camu-class": "camu@scenario=class", "camu-random": "camu@scenario=random"}[work]
    env = dict(os.environ, CAMU_CACHE_DIR=cache)
    sh([PIPE, "run", pipeline, stage, "--force", stage, "--cpus", str(threads)], env)
    rows = json.loads(sh([PIPE, "status", pipeline, stage, "--json"], env))
    key = next(r["key"] for r in rows if r["stage"] == stage)
    with open(os.path.join(cache, "records", f"{key}.json")) as f:
        rec = json.load(f)
    m = rec["metrics"]
    loop = m.get("train_time_s") if work == "train" else m.get("unlearn_time_s")
    return {"seconds": loop, "process_seconds": rec["duration_s"]}


def pytorch(work, raw, epochs, threads):
    args = [sys.executable, os.path.join(HERE, "reference.py")]
    if work == "train":
        args += ["train", "--epochs", str(epochs)]
    else:
        args += ["camu", "--scenario", work.split("-")[1]]
    args += ["--raw", raw, "--threads", str(threads)]
    t0 = time.perf_counter()
    out = json.loads(sh(args).strip().splitlines()[-1])
    # Whole process, interpreter and imports included, as camu-pipe's figure includes its start-up.
    out["process_seconds"] = time.perf_counter() - t0
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="train,camu-class,camu-random")
    p.add_argument("--raw", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    works = a.only.split(",")
    tmp = tempfile.mkdtemp(prefix="vs-pytorch-")
    pipeline = os.path.join(tmp, "bench.yaml")
    cache = os.path.join(tmp, "cache")
    with open(pipeline, "w") as f:
        f.write(PIPELINE.format(epochs=a.epochs, threads=a.threads))
    # Data, splits, the original and both CaMU runs once, so each timed run redoes one stage.
    sh([PIPE, "run", pipeline, "--cpus", str(a.threads)], dict(os.environ, CAMU_CACHE_DIR=cache))
    results = {w: {"pytorch": [], "camu-pipe": []} for w in works}
    for rep in range(a.reps):
        for w in works:
            for impl in ("pytorch", "camu-pipe"):
                r = pytorch(w, a.raw, a.epochs, a.threads) if impl == "pytorch" else camu_pipe(w, pipeline, cache, a.threads)
                results[w][impl].append(r)
                print(f"rep {rep + 1} {w:12s} {impl:9s} loop {r['seconds']:7.2f} s  process {r['process_seconds']:7.2f} s", file=sys.stderr)
    print(f"\n{a.reps} runs each, alternating; {a.threads} threads; training {a.epochs} epochs of 60,000 images.")
    print("| work | PyTorch loop (s) | camu-pipe loop (s) | time ratio (camu-pipe / PyTorch) | PyTorch process (s) | camu-pipe process (s) | process ratio |")
    print("|---|---|---|---|---|---|---|")
    for w in works:
        med = lambda impl, k: statistics.median(r[k] for r in results[w][impl])
        pl, cl = med("pytorch", "seconds"), med("camu-pipe", "seconds")
        pp, cp = med("pytorch", "process_seconds"), med("camu-pipe", "process_seconds")
        print(f"| {w} | {pl:.2f} | {cl:.2f} | {cl / pl:.2f} | {pp:.2f} | {cp:.2f} | {cp / pp:.2f} |")
    print(json.dumps(results), file=open(os.path.join(tmp, "results.json"), "w"))
    print(f"\nraw results: {os.path.join(tmp, 'results.json')}")


if __name__ == "__main__":
    main()
