#!/usr/bin/env python3
"""Cross-check of camu-pipe's per-example privacy audit (crates/lab/src/audit.rs) against an
independent implementation of the NeurIPS 2023 unlearning competition's metric, written here
in PyTorch and NumPy from the organisers' scoring code (google-deepmind/unlearning_evaluation at
ffae0ff, `metric.py`) with the same tensor types it uses: float32 single-threshold grid
(`torch.linspace`), float64 interval grid (`np.linspace`), float32 rates and float32 epsilon
formula. Where that code cannot run as published (`assert thr_eps` on an array of more than one
element), the check is what its message says: at least one threshold survives.

    python scripts/audit-crosscheck.py [--worker target/release/camu-worker] [--runs 8 16 32]
        [--examples 200] [--seed 0]

For each number of runs it draws synthetic confidences for retrained and unlearned models
(eight regimes over the forget examples: the same distribution, shifted, wider, narrower, a
deterministic side, values with ties, two equal constants, two different constants), writes them as CSV, has `camu-worker audit` compute per-example epsilons and
F, computes both here, and prints how many epsilons agree to 1e-6 and whether F agrees. Exit 1
on any difference. Needs torch and numpy (scripts/setup.sh's environment has both).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

DELTA = 1e-5
CAP = 50
PER_UNIT = 100


def rates_single(pos, neg):
    pooled = torch.cat([pos, neg])
    lo, hi = pooled.min(), pooled.max()
    count = int(torch.ceil((hi - lo) * PER_UNIT))
    grid = torch.linspace(lo.item(), hi.item(), count)  # float32, the default dtype
    grid = grid.reshape(1, -1)
    p, n = pos.reshape(-1, 1), neg.reshape(-1, 1)
    fpr = (n >= grid).float().mean(0)
    fnr = (p < grid).float().mean(0)
    return fpr, fnr


def rates_interval(pos, neg):
    pd, nd = pos.max() - pos.min(), neg.max() - neg.min()
    narrow = nd if pd > nd else pd
    if pd >= nd:  # inside the interval is "positive", and the narrower side is the positive one
        pos, neg = neg, pos
    lo = (pos.min() + narrow - 2.0).item()
    hi = (pos.max() + 2.0).item()
    narrow = narrow.item()
    rights = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * PER_UNIT)))
    per = int(np.ceil(2 * 2.0 * PER_UNIT))
    if len(rights) == 0:
        return torch.zeros(0), torch.zeros(0)
    lefts = np.concatenate([np.linspace(r - narrow - 2.0, r - narrow + 2.0, num=per) for r in rights])
    rights = np.repeat(rights, per)
    left = torch.from_numpy(lefts).reshape(1, -1)
    right = torch.from_numpy(rights).reshape(1, -1)

    def inside(c):
        c = c.reshape(-1, 1)
        return ((left <= c) & (c <= right)).float()

    fpr = inside(neg).mean(0)
    fnr = (1.0 - inside(pos)).mean(0)
    return fpr, fnr


def example_epsilon(retrained, unlearned):
    r, u = torch.from_numpy(retrained), torch.from_numpy(unlearned)
    if np.median(retrained) > np.median(unlearned):
        pos, neg = r, u
    else:
        pos, neg = u, r
    pd, nd = (pos.max() - pos.min()).item(), (neg.max() - neg.min()).item()
    largest, smallest = (pd, nd) if pd > nd else (nd, pd)
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.float64(smallest) / np.float64(largest) < 0.01:
            return float(CAP)
    f2, n2 = rates_interval(pos, neg)
    f1, n1 = rates_single(pos, neg)
    fpr = torch.cat([f2, f1]).numpy()
    fnr = torch.cat([n2, n1]).numpy()
    eps = np.zeros(len(fpr), dtype=np.float32)
    both = (fpr + fnr) == 0
    one = (fpr * fnr) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.log(1 - DELTA - fpr) - np.log(fnr)
        b = np.log(1 - DELTA - fnr) - np.log(fpr)
        both_nan = np.isnan(a) & np.isnan(b)
        m = np.where(np.isnan(a), b, np.where(np.isnan(b), a, np.maximum(a, b)))
    eps = np.clip(m, 0, None).astype(np.float32)
    eps[both_nan] = np.nan
    eps[one & ~both] = np.nan
    eps[both] = np.inf
    kept = eps[~np.isnan(eps)]
    if len(kept) == 0:
        return 0.0  # every attack discarded: indistinguishable (camu-pipe's documented choice)
    return float(np.clip(np.max(kept), 0, CAP))


def forgetting_quality(eps, models):
    top = math.ceil(math.log(models - 1))
    points = []
    for e in eps:
        start, value, got = 0.0, 1.0, 0.0
        while start + 0.5 <= top:
            if e < start + 0.5:
                got = value
                break
            value /= 2
            start += 0.5
        points.append(got)
    return sum(points) / len(points)


REGIMES = 8


def draw(runs, examples, rng):
    """Per example one regime: retrained ~ N(m, 1); unlearned the same, shifted, wider,
    narrower, or one constant value (a deterministic method); both sides rounded to 0.25 (ties,
    equal medians); both sides one and the same constant; both constant but different."""
    r = np.empty((runs, examples))
    u = np.empty((runs, examples))
    for i in range(examples):
        m = rng.uniform(-4, 8)
        r[:, i] = m + rng.standard_normal(runs)
        kind = i % REGIMES
        if kind == 0:
            u[:, i] = m + rng.standard_normal(runs)
        elif kind == 1:
            u[:, i] = m + rng.uniform(0.3, 3) + rng.standard_normal(runs)
        elif kind == 2:
            u[:, i] = m + 3 * rng.standard_normal(runs)
        elif kind == 3:
            u[:, i] = m + 0.2 * rng.standard_normal(runs)
        elif kind == 4:
            u[:, i] = m + 2
        elif kind == 5:
            r[:, i] = np.round(r[:, i] * 4) / 4
            u[:, i] = np.round((m + rng.standard_normal(runs)) * 4) / 4
        elif kind == 6:
            r[:, i] = m
            u[:, i] = m
        else:
            r[:, i] = m
            u[:, i] = m + 0.5
    return r, u


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--worker", default=os.path.join(root, "target", "release", "camu-worker"))
    p.add_argument("--runs", type=int, nargs="+", default=[5, 8, 16, 33])
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for runs in args.runs:
            r, u = draw(runs, args.examples, rng)
            paths = []
            for name, a in (("retrained", r), ("unlearned", u)):
                path = os.path.join(tmp, f"{name}-{runs}.csv")
                with open(path, "w") as f:
                    for row in a:
                        f.write(",".join(repr(float(v)) for v in row) + "\n")
                paths.append(path)
            out = subprocess.run([args.worker, "audit", *paths], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"camu-worker audit: {out.stderr.strip()}")
            ours = json.loads(out.stdout)
            if ours["models"] != runs or len(ours["epsilons"]) != args.examples:
                sys.exit(f"camu-worker audit read {ours['models']} runs and gave "
                         f"{len(ours['epsilons'])} epsilons for {runs} runs of {args.examples} examples")
            theirs = [example_epsilon(r[:, i], u[:, i]) for i in range(args.examples)]
            diff = [abs(a - b) for a, b in zip(ours["epsilons"], theirs)]
            same = sum(d <= 1e-6 for d in diff)
            f_here = forgetting_quality(theirs, runs)
            f_same = abs(f_here - ours["forgetting_quality"]) <= 1e-12
            print(f"{runs} runs: {same}/{len(diff)} epsilons within 1e-6 (largest difference "
                  f"{max(diff):.3g}); F {ours['forgetting_quality']:.6f} here {f_here:.6f}"
                  f"{'' if f_same else ' DIFFERENT'}; U-LiRA {ours['ulira']}")
            for i, d in enumerate(diff):
                if d > 1e-6:
                    print(f"  example {i} (regime {i % REGIMES}): camu-pipe {ours['epsilons'][i]!r}, here {theirs[i]!r}")
            bad += (len(diff) - same) + (not f_same)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
