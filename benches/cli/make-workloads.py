#!/usr/bin/env python3
"""Writes the same trivial workloads for camu-pipe, DVC and Snakemake into a directory:
a 12-stage chain (each stage copies its parent's file and appends a line) and 500 independent
stages (a 5 x 100 matrix, each writes one line). Usage: make-workloads.py DIR"""
import os
import sys

root = sys.argv[1]
A, B = range(5), range(100)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# camu-pipe
chain = ["stages:"]
for i in range(12):
    chain.append(f"  s{i}:\n    kind: command\n    outputs: [o.txt]")
    if i == 0:
        chain.append('    command: "echo 0 > ${out}/o.txt"')
    else:
        chain.append(f"    needs: [s{i-1}]")
        chain.append(f'    command: "cat ${{in.s{i-1}}}/o.txt > ${{out}}/o.txt; echo {i} >> ${{out}}/o.txt"')
write(f"{root}/camu/chain/pipeline.yaml", "\n".join(chain) + "\n")
write(
    f"{root}/camu/wide/pipeline.yaml",
    "stages:\n  s:\n    kind: command\n"
    f"    matrix: {{a: {list(A)}, b: {list(B)}}}\n"
    '    command: "echo ${a} ${b} > ${out}/o.txt"\n    outputs: [o.txt]\n',
)

# DVC
chain = ["stages:"]
for i in range(12):
    chain.append(f"  s{i}:")
    if i == 0:
        chain.append("    cmd: echo 0 > o0.txt")
    else:
        chain.append(f"    cmd: cat o{i-1}.txt > o{i}.txt; echo {i} >> o{i}.txt")
        chain.append(f"    deps: [o{i-1}.txt]")
    chain.append(f"    outs: [o{i}.txt]")
write(f"{root}/dvc/chain/dvc.yaml", "\n".join(chain) + "\n")
write(
    f"{root}/dvc/wide/dvc.yaml",
    "stages:\n  s:\n    matrix:\n"
    f"      a: {list(A)}\n      b: {list(B)}\n"
    '    cmd: echo ${item.a} ${item.b} > "o_${item.a}_${item.b}.txt"\n'
    '    outs: ["o_${item.a}_${item.b}.txt"]\n',
)

# Snakemake
rules = ['rule all:\n    input: "o11.txt"\n']
for i in range(12):
    if i == 0:
        rules.append('rule s0:\n    output: "o0.txt"\n    shell: "echo 0 > {output}"\n')
    else:
        rules.append(
            f'rule s{i}:\n    input: "o{i-1}.txt"\n    output: "o{i}.txt"\n'
            f'    shell: "cat {{input}} > {{output}}; echo {i} >> {{output}}"\n'
        )
write(f"{root}/snakemake/chain/Snakefile", "\n".join(rules))
write(
    f"{root}/snakemake/wide/Snakefile",
    f"A = {list(A)}\nB = {list(B)}\n\n"
    'rule all:\n    input: expand("o_{a}_{b}.txt", a=A, b=B)\n\n'
    'rule s:\n    output: "o_{a}_{b}.txt"\n    shell: "echo {wildcards.a} {wildcards.b} > {output}"\n',
)
