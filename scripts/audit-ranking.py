#!/usr/bin/env python3
"""How stable an audit's ranking of methods is: a paired bootstrap over the forget examples.

    python3 scripts/audit-ranking.py pipelines/fashion-audit.yaml [--resamples 1000] [--seed 0]
        [--camu-pipe target/release/camu-pipe]

For each scenario and number of runs among the pipeline's cached `audit` stages, it reads every
method's per-example points (`epsilons.json`), draws the forget examples with replacement
(the same draw for every method, since they audit the same examples), recomputes each method's F,
and prints how often each method takes each rank, and how often the order of the means holds
whole. Standard library only.
"""

import argparse
import json
import os
import random
import subprocess
import sys
from collections import defaultdict


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {out.stderr.strip()}")
    return out.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("pipeline")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camu-pipe", default=os.path.join(root, "target", "release", "camu-pipe"))
    args = p.parse_args()
    rows = json.loads(run([args.camu_pipe, "status", args.pipeline, "--json"]))
    groups = defaultdict(dict)  # (scenario, runs) -> method -> points
    for r in rows:
        stage = r["stage"]
        if not stage.startswith("audit") or r.get("state") != "cached":
            continue
        out = run([args.camu_pipe, "path", args.pipeline, stage]).strip()
        metrics = json.load(open(os.path.join(out, "metrics.json")))
        eps = json.load(open(os.path.join(out, "epsilons.json")))
        scenario = json.dumps(metrics.get("scenario"), sort_keys=True)
        groups[(scenario, metrics["runs"])][metrics["method"]] = [e["points"] for e in eps]
    if not groups:
        sys.exit(f"{args.pipeline}: no cached audit stages")
    rng = random.Random(args.seed)
    for (scenario, runs), by_method in sorted(groups.items()):
        methods = sorted(by_method)
        n = len(by_method[methods[0]])
        if any(len(v) != n for v in by_method.values()):
            sys.exit(f"{scenario}, {runs} runs: the methods audited different numbers of examples")
        mean = {m: sum(v) / n for m, v in by_method.items()}
        order = sorted(methods, key=lambda m: -mean[m])
        ranks = {m: [0] * len(methods) for m in methods}
        whole = 0
        for _ in range(args.resamples):
            idx = [rng.randrange(n) for _ in range(n)]
            f = {m: sum(by_method[m][i] for i in idx) / n for m in methods}
            drawn = sorted(methods, key=lambda m: -f[m])
            whole += drawn == order
            for k, m in enumerate(drawn):
                ranks[m][k] += 1
        print(f"{json.loads(scenario)}, {runs} runs, {n} examples: order by F "
              f"{' > '.join(order)}; whole order held in {100 * whole / args.resamples:.1f}% of "
              f"{args.resamples} resamples")
        for m in order:
            share = ", ".join(f"rank {k + 1}: {100 * c / args.resamples:.1f}%" for k, c in enumerate(ranks[m]) if c)
            print(f"  {m:12} F {mean[m]:.4f}  {share}")


if __name__ == "__main__":
    sys.exit(main())
