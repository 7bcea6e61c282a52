#!/usr/bin/env python3
"""Lets the PyPI torch wheel import on a machine without its CUDA libraries.

The wheel's shared objects link cuDNN, cuBLAS, NCCL and a dozen more CUDA libraries (about 5 GB of
wheels). For CPU use none of them is ever called: CUDA calls go through the real CUDA runtime
(libcudart, a 2 MB wheel), which reports no device. This writes an empty stand-in for each missing
library, defining every symbol (with its symbol version) that torch imports from it, so the
dynamic loader is satisfied.

usage: torch-cpu-stubs.py TORCH_LIB_DIR OUT_DIR [DIR_WITH_REAL_LIBS ...]
Needs readelf and gcc.
"""
import os
import re
import subprocess
import sys
import tempfile

SYSTEM_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
# Unversioned imports that belong to a CUDA library (the rest come from torch, Python or libc).
CUDA_PREFIX = re.compile(r"(cu|nccl|nvshmem|nvrtc)")


def readelf(*args):
    return subprocess.run(["readelf", *args], check=True, capture_output=True, text=True).stdout


def symbols(path):
    """(imported [(type, name@version)], defined {name})."""
    imported, defined = [], set()
    for line in readelf("--dyn-syms", "--wide", path).splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].endswith(":"):
            continue
        if f[6] == "UND":
            imported.append((f[3], f[7]))
        else:
            defined.add(f[7].split("@")[0])
    return imported, defined


def version_files(path):
    """Symbol version name -> the library that must define it (`.gnu.version_r`)."""
    files, current = {}, None
    for line in readelf("-V", "--wide", path).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current:
            files[m.group(1)] = current
    return files


def main(torch_lib, out_dir, real_dirs):
    package = os.path.dirname(torch_lib)
    libs = [os.path.join(torch_lib, n) for n in os.listdir(torch_lib) if ".so" in n]
    libs += [os.path.join(package, n) for n in os.listdir(package) if n.startswith("_C") and n.endswith(".so")]
    present = {os.path.basename(p) for p in libs}
    for d in real_dirs:
        present |= set(os.listdir(d))
    missing = set()
    for p in libs:
        for n in re.findall(r"Shared library: \[(.+?)\]", readelf("-d", p)):
            if n not in present and not any(os.path.exists(os.path.join(d, n)) for d in SYSTEM_DIRS):
                missing.add(n)
    defined, wanted = set(), {}
    for p in libs:
        imported, d = symbols(p)
        defined |= d
        owner = version_files(p)
        for typ, name in imported:
            base, _, ver = name.partition("@")
            ver = ver.split(" ")[0]
            wanted.setdefault(base, (typ, ver, owner.get(ver, "")))
    per_lib = {m: {} for m in missing}
    versions = {m: set() for m in missing}
    loose = {}
    for base, (typ, ver, lib) in wanted.items():
        if base in defined:
            continue
        if lib in missing:
            per_lib[lib][base] = (typ, ver)
            versions[lib].add(ver)
        elif not ver and CUDA_PREFIX.match(base):
            loose[base] = (typ, "")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for lib, syms in sorted(per_lib.items()):
            # Unversioned CUDA imports are defined in every stand-in: the loader finds them in
            # whichever stand-in the importing library links.
            syms = {**loose, **syms}
            src, script = os.path.join(work, "stub.c"), os.path.join(work, "version.map")
            with open(src, "w") as f:
                for s, (typ, _) in sorted(syms.items()):
                    f.write(f"char {s}[64];\n" if typ == "OBJECT" else f"void {s}(void) {{}}\n")
            nodes = sorted(versions[lib]) or [lib]
            with open(script, "w") as f:
                for i, node in enumerate(nodes):
                    mine = [s for s, (_, v) in syms.items() if v == node or (i == 0 and not v)]
                    f.write("%s { global: %s local: *; };\n" % (node, "".join(s + "; " for s in sorted(mine))))
            subprocess.run(["gcc", "-shared", "-fPIC", "-w", "-fno-builtin", "-o", os.path.join(out_dir, lib), src,
                            f"-Wl,-soname,{lib}", f"-Wl,--version-script,{script}"], check=True)
            print(f"{lib}: {len(syms)} symbols")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
