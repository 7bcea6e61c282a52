"""Side by side: a baseline's reference code and camu-pipe's built-in, on camu-pipe's own inputs.

For each method, this loads the original model, the dataset and the split that a camu-pipe
pipeline used (through `camu-pipe path`), runs the unlearning function of the method's reference
repository on them in PyTorch (the repository's own function, adapted only for the CPU, the
loaders and the model), evaluates RA, FA and TA, and prints them beside the evaluation camu-pipe
recorded for its own run of the method on the same inputs.

    python benches/vs-reference/run.py --refs DIR [--pipeline pipelines/fashion.yaml]
        [--scenario class random] [--seed 0] [--methods finetune neggrad ...] [--json OUT]

DIR holds checkouts of the reference repositories, each in a folder named as the repository
(fetched by the user, never part of camu-pipe), at the commits docs/methods.md names:
Unlearn-Sparse and Unlearn-Saliency (OPTML-Group), selective-synaptic-dampening (if-loops),
bad-teaching-unlearning and Fast-Machine-Unlearning (vikram2000b), SCRUB (meghdadk), CaMU
(ShaofeiShen768); only those of the methods asked for are needed. The pipeline must have run (its `original`,
`split@...` and `evaluate@...` stages cached); set CAMU_CACHE_DIR as for the run. Run it with an
interpreter that has torch and numpy (scripts/setup.sh's environment has both) and camu-pipe's
`python/` folder on PYTHONPATH; torchvision and the repositories' other imports are not needed.
Each reference run is a separate process, since the repositories share module names.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)

import adapters  # noqa: E402


def camu_path(pipeline, stage, camu):
    out = subprocess.run([camu, "path", pipeline, stage], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"camu-pipe path {pipeline} {stage}: {out.stderr.strip()}")
    return out.stdout.strip()


def stage_exists(pipeline, stage, camu):
    out = subprocess.run([camu, "path", pipeline, stage], capture_output=True, text=True)
    return out.returncode == 0 or "no stage" not in out.stderr


def camu_result(pipeline, scenario, seed, method, camu):
    """camu-pipe's evaluation of its own run, or None where it has no cached result yet."""
    stage = f"evaluate@scenario={scenario},seed={seed},method={method}"
    out = subprocess.run([camu, "path", pipeline, stage], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    m = json.load(open(os.path.join(out.stdout.strip(), "metrics.json")))
    return {"RA": m["acc_remain_train"], "FA": m["acc_forget_train"], "TA": m["acc_test"]}


def one(args):
    """Runs one reference method in this process and prints its result as JSON."""
    import torch

    import camu_pipe
    from camu_pipe import models as cmodels
    from camu_pipe.stage import Context

    torch.set_num_threads(args.threads)
    data = camu_pipe.load_dataset(args.data)
    split = camu_pipe.load_split(args.split)
    spec = {"stage": "vs-reference", "params": {}, "seed": args.seed, "threads": args.threads,
            "out_dir": args.work, "original": args.original}
    ctx = Context(spec, data, split, "cpu")
    model = cmodels.load(args.original, "cpu")
    torch.manual_seed(args.seed if args.run_seed is None else args.run_seed)
    t0 = time.perf_counter()
    unlearned, settings = adapters.run(args.method, ctx, model, os.path.abspath(args.refs), args.work)
    secs = time.perf_counter() - t0
    acc = adapters.evaluate(ctx, unlearned)
    print("RESULT " + json.dumps({"method": args.method, **acc, "seconds": secs, "settings": settings}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--refs", required=True, help="folder of reference checkouts, one per repository name")
    p.add_argument("--pipeline", default=os.path.join(ROOT, "pipelines", "fashion.yaml"))
    p.add_argument("--scenario", nargs="+", default=["class", "random"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=sorted(adapters.repositories()))
    p.add_argument("--camu-pipe", default=os.path.join(ROOT, "target", "release", "camu-pipe"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run-seed", type=int, help="seed of the reference run's own randomness "
                   "(shuffles, labels; default: --seed), to measure its run-to-run spread")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--reuse", help="take the reference results from this earlier --json output "
                   "(no reference run) and read camu-pipe's side afresh")
    # One reference run (what the main process starts per method).
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    for k in ("method", "data", "split", "original", "work"):
        p.add_argument(f"--{k}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args)

    repos = adapters.repositories()
    unknown = [m for m in args.methods if m not in repos]
    if unknown:
        raise SystemExit(f"no adapter for {unknown}; known: {sorted(repos)}")
    for repo in sorted({repos[m] for m in args.methods}):
        if not os.path.isdir(os.path.join(args.refs, repo)):
            raise SystemExit(f"{args.refs}/{repo}: missing; check out the reference repository there")
    cp = args.camu_pipe
    rows = []
    if args.reuse:
        for r in json.load(open(args.reuse)):
            r["camu_pipe"] = camu_result(args.pipeline, r["scenario"], r["seed"], r["method"], cp)
            rows.append(r)
        print(table(rows))
        if args.json:
            json.dump(rows, open(args.json, "w"), indent=1)
        return 0
    for scenario in args.scenario:
        data = camu_path(args.pipeline, "data", cp)
        split = camu_path(args.pipeline, f"split@scenario={scenario},seed={args.seed}", cp)
        original = camu_path(args.pipeline, "original", cp)
        for method in args.methods:
            if not stage_exists(args.pipeline, f"evaluate@scenario={scenario},seed={args.seed},method={method}", cp):
                continue  # not part of the grid (UNSIR in random removal)
            work = os.path.join("/tmp", f"vs-reference-{os.getpid()}-{method}-{scenario}")
            os.makedirs(work, exist_ok=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--one", "--refs", args.refs,
                   "--method", method, "--data", data, "--split", split, "--original", original,
                   "--work", work, "--seed", str(args.seed), "--threads", str(args.threads)]
            if args.run_seed is not None:
                cmd += ["--run-seed", str(args.run_seed)]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
            res = [line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode != 0 or not res:
                print(f"{method} ({scenario}): the reference run failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            ref = json.loads(res[-1])
            ours = camu_result(args.pipeline, scenario, args.seed, method, cp)
            row = {"method": method, "scenario": scenario, "seed": args.seed, "run_seed": args.run_seed,
                   "reference": ref, "camu_pipe": ours}
            rows.append(row)
            print(fmt_row(row), flush=True)
            if args.json:  # after every row: a long run that is stopped keeps what it did
                json.dump(rows, open(args.json, "w"), indent=1)
    print()
    print(table(rows))
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


def fmt_row(r):
    ref, ours = r["reference"], r["camu_pipe"]
    f = lambda m: "/".join(f"{100 * m[k]:.2f}" for k in ("RA", "FA", "TA"))  # noqa: E731
    bad = f" (non-finite outputs on {100 * ref['nonfinite_rows']:.0f}% of rows)" if ref.get("nonfinite_rows") else ""
    return f"{r['method']:16} {r['scenario']:7} camu-pipe {f(ours) if ours else '-':20} reference {f(ref)}{bad}"


def table(rows):
    """Markdown: RA / FA / TA on both sides and the largest difference in points."""
    out = ["| method | scenario | camu-pipe RA / FA / TA | reference code RA / FA / TA | largest difference (points) |",
           "|---|---|---|---|---|"]
    for r in rows:
        ref, ours = r["reference"], r["camu_pipe"]
        f = lambda m: " / ".join(f"{100 * m[k]:.2f}" for k in ("RA", "FA", "TA"))  # noqa: E731
        diff = "-" if ours is None else f"{max(abs(100 * (ours[k] - ref[k])) for k in ('RA', 'FA', 'TA')):.2f}"
        scen = "class 0" if r["scenario"] == "class" else "random 10%"
        theirs = f(ref)
        if ref.get("nonfinite_rows", 0) > 0:
            theirs = f"non-finite outputs on {100 * ref['nonfinite_rows']:.0f}% of rows"
            diff = "-"
        out.append(f"| {r['method']} | {scen} | {f(ours) if ours else '-'} | {theirs} | {diff} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
