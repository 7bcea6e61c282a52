#!/usr/bin/env python3
"""Cross-checks camu-pipe's reference-attack learner against XGBoost on the same features.

Every evaluate stage run with `mia_export: true` (pipelines/quickstart.yaml does) writes the
attack's fit set (`mia_fit.csv`: 99% of 4,000 Ds + 4,000 test rows, as the reference's
train_test_split keeps) and its evaluation set (`mia_eval.csv`: Df + as many unseen test rows)
next to its metrics.json. This script fits XGBClassifier(n_estimators=100,
objective='binary:logistic') on the first, scores `predict` on the second and compares the
accuracy with the `mia_camu` that camu-pipe recorded.

    pip install xgboost-cpu scikit-learn      # any XGBoost >= 1.7
    python3 scripts/mia-crosscheck.py [CACHE_DIR]    # default: cache
    python3 scripts/mia-crosscheck.py --synthetic N [--seed S]

`--synthetic N` needs no cache: it draws N attack sets shaped like the real ones (7,920 fit and
12,000 evaluation rows of 10 sorted softmax probabilities, labels independent of the features, so
the attack is at chance and many splits are near-ties), fits camu-pipe's learner on each
(`camu-worker attack-accuracy`, from target/release or $CAMU_WORKER) and XGBoost, and counts the
sets on which the two accuracies are identical.

`tree_method="exact"` with `base_score=0.5` is the learner the reference ran (XGBoost 1.x picks
exact greedy for data this small and starts from 0.5) and the one camu-pipe reproduces; the row
fails when the two differ by more than 0.01. `hist` (XGBoost 2+'s default) is printed beside it
for information. Exit status 1 if any
exact comparison fails, 2 if there is nothing to compare.
"""

import json
import sys
from pathlib import Path

import numpy as np
import xgboost

TOLERANCE = 0.01


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    return data[:, 1:], data[:, 0].astype(np.int32)


def attack_accuracy(fit, ev, tree_method):
    model = xgboost.XGBClassifier(
        n_estimators=100,
        objective="binary:logistic",
        tree_method=tree_method,
        # XGBoost 1.x's starting point, which the reference ran (2+ estimates an intercept).
        base_score=0.5,
        n_jobs=1,
    )
    model.fit(*fit)
    x, y = ev
    return float((model.predict(x) == y).mean())


def synthetic(n, seed):
    import os
    import subprocess
    import tempfile

    worker = os.environ.get("CAMU_WORKER") or str(Path(__file__).resolve().parent.parent / "target/release/camu-worker")
    rng = np.random.default_rng(seed)
    same, worst = 0, 0.0
    print(f"xgboost {xgboost.__version__}; {n} synthetic near-chance attack sets (seed {seed})\n")
    print("| set | camu-pipe | XGBoost exact | diff |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            paths = []
            for name, rows in (("fit", 7920), ("eval", 12000)):
                logits = rng.normal(size=(rows, 10)) * rng.uniform(1, 8)
                p = np.exp(logits - logits.max(1, keepdims=True))
                p = np.sort(p / p.sum(1, keepdims=True), 1).astype(np.float32)
                y = rng.integers(0, 2, rows)
                path = os.path.join(tmp, f"{name}.csv")
                with open(path, "w") as f:
                    f.write("label," + ",".join(f"f{i}" for i in range(10)) + "\n")
                    for label, row in zip(y, p):
                        f.write(f"{label}," + ",".join(repr(float(v)) for v in row) + "\n")
                paths.append(path)
            out = subprocess.run([worker, "attack-accuracy", *paths], capture_output=True, text=True, check=True)
            ours = float(out.stdout.strip())
            theirs = attack_accuracy(load(paths[0]), load(paths[1]), "exact")
            diff = abs(ours - theirs)
            same += diff == 0
            worst = max(worst, diff)
            print(f"| {k} | {ours:.4f} | {theirs:.4f} | {diff:.4f} |", flush=True)
    print(f"\n{same} of {n} identical; largest difference {worst:.4f}")
    return 0 if worst <= TOLERANCE else 1


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--synthetic":
        seed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seed" else 0
        return synthetic(int(sys.argv[2]), seed)
    cache = Path(sys.argv[1] if len(sys.argv) > 1 else "cache")
    dirs = sorted(p.parent for p in (cache / "out").glob("*/mia_fit.csv"))
    rows = []
    for d in dirs:
        m = json.loads((d / "metrics.json").read_text())
        stage = m.get("provenance", {}).get("evaluate", {}).get("stage", d.name[:12])
        ours = m.get("mia_camu")
        if ours is None:
            continue
        fit, ev = load(d / "mia_fit.csv"), load(d / "mia_eval.csv")
        exact = attack_accuracy(fit, ev, "exact")
        hist = attack_accuracy(fit, ev, "hist")
        rows.append((stage, ours, exact, hist, len(fit[1]), len(ev[1])))
    if not rows:
        print(f"no evaluate outputs with mia_fit.csv under {cache}/out", file=sys.stderr)
        return 2
    print(f"xgboost {xgboost.__version__}; attack accuracy on Df + unseen test\n")
    print("| evaluate stage | fit rows | eval rows | camu-pipe | XGBoost exact | diff | XGBoost hist |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failed = 0
    for stage, ours, exact, hist, n_fit, n_eval in rows:
        diff = abs(ours - exact)
        failed += diff > TOLERANCE
        flag = "" if diff <= TOLERANCE else " FAIL"
        print(
            f"| {stage} | {n_fit} | {n_eval} | {ours:.4f} | {exact:.4f} | {diff:.4f}{flag} | {hist:.4f} |"
        )
    print(f"\n{len(rows) - failed} of {len(rows)} within {TOLERANCE} of XGBoost (exact)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
