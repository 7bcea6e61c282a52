#!/usr/bin/env python3
"""Prints the Markdown table of a benches/cli/run.sh result directory: medians, and each peer's
time as a multiple of camu-pipe's on the same row."""
import glob
import json
import os
import sys

out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(f"{out}/json/*.json")):
    name = os.path.basename(f)[:-5]
    for peer in ("-dvc", "-snakemake"):
        if name.endswith(peer):
            name = name[: -len(peer)]
    for r in json.load(open(f))["results"]:
        rows.setdefault(name, {})[r["command"]] = (r["median"], len(r["times"]))

labels = {
    "version": "`camu-pipe --version`",
    "first-chain": "first run, 12-stage chain",
    "noop-chain": "no-op re-run, 12-stage chain",
    "first-wide": "first run, 500 independent stages",
    "noop-wide": "no-op re-run, 500 independent stages",
}
tools = ["camu-pipe", "dvc", "snakemake"]
print("| work | " + " | ".join(tools) + " |")
print("|---|" + "---:|" * len(tools))
for key, label in labels.items():
    if key not in rows:
        continue
    r = rows[key]
    base = r.get("camu-pipe", (None,))[0]
    cells = []
    for t in tools:
        if t not in r:
            cells.append("-")
            continue
        med, n = r[t]
        cell = f"{med * 1000:.1f} ms" if med < 1 else f"{med:.2f} s"
        if t != "camu-pipe" and base:
            cell += f" ({med / base:.1f}x)"
        cells.append(cell + ("" if n > 1 else " (1 run)"))
    print(f"| {label} | " + " | ".join(cells) + " |")
rss = open(f"{out}/version-rss-kib").read().strip()
print(f"\nMedians over the runs shown by hyperfine; `--version` peak RSS: {int(rss) / 1024:.1f} MiB.")
if "first-wide" in rows and "camu-pipe" in rows["first-wide"]:
    per = rows["first-wide"]["camu-pipe"][0] / 500 * 1000
    print(f"First run of 500 stages: {per:.2f} ms of wall time per stage (2 at a time on 2 cores).")
