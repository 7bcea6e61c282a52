"""The yardstick for camu-pipe's ML speed: the reference's training loop and CaMU loop, written
plainly in PyTorch from shared/reference/camu-method.md, with the reference's data path
(torchvision FashionMNIST with a per-sample ToTensor, DataLoader batch 32, shuffled, no workers).

Usage: reference.py {train,camu} --raw DIR [--epochs N] [--scenario random|class] [--threads T]
DIR holds the four Fashion-MNIST idx files (gzip or not). Prints one JSON line with the timings.
"""

import argparse
import gzip
import json
import os
import shutil
import tempfile
import time

import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

# The reference CNN as the camu_pipe package defines it (tests/python.rs checks it computes what
# camu-worker's does).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from camu_pipe.models import Cnn  # noqa: E402


def dataset(raw, train):
    """torchvision's FashionMNIST over the given idx files (copied uncompressed where it looks)."""
    root = tempfile.mkdtemp(prefix="fmnist-")
    dest = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(dest)
    for name in os.listdir(raw):
        src = os.path.join(raw, name)
        out = os.path.join(dest, name.removesuffix(".gz"))
        opener = gzip.open if name.endswith(".gz") else open
        with opener(src, "rb") as f, open(out, "wb") as g:
            shutil.copyfileobj(f, g)
    ds = datasets.FashionMNIST(root, train=train, download=False, transform=transforms.ToTensor())
    shutil.rmtree(root)
    return ds


def train(args):
    ds = dataset(args.raw, True)
    torch.manual_seed(0)
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=0)
    t0 = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        total = 0.0
        for x, y in loader:
            opt.zero_grad()
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            total += loss.item()
    secs = time.perf_counter() - t0
    images = len(ds) * args.epochs
    return {"work": "train", "epochs": args.epochs, "seconds": secs, "images_per_s": images / secs}


def camu(args):
    ds = dataset(args.raw, True)
    g = torch.Generator().manual_seed(0)
    labels = ds.targets
    n = len(ds)
    if args.scenario == "class":
        forget = torch.nonzero(labels == 0).flatten()
        remain = torch.nonzero(labels != 0).flatten()
        epochs, impair_lr, kl_lr = 2, 1e-3, 4e-4
    else:
        perm = torch.randperm(n, generator=g)
        forget, remain = perm[: n // 10], perm[n // 10 :]
        epochs, impair_lr, kl_lr = 10, 5e-4, 4e-4
    sample = remain[torch.randperm(len(remain), generator=g)[: len(forget)]]
    torch.manual_seed(0)
    original = Cnn()
    original.eval()

    t0 = time.perf_counter()
    # Step 1: the counterfactual tuples, materialised once through the dataset's transform.
    tuples = []
    for f, s in zip(forget.tolist(), sample.tolist()):
        x_f, y_f = ds[f]
        x_s, y_s = ds[s]
        x_cf = x_s + torch.rand_like(x_s)
        y_cf = y_s
        if y_cf == y_f:
            others = [c for c in range(10) if c != y_f]
            y_cf = others[torch.randint(len(others), (1,)).item()]
        tuples.append((x_f, y_f, x_cf, y_cf))
    # Step 2: f_n = f_o, two Adam optimizers.
    model = Cnn()
    model.load_state_dict(original.state_dict())
    model.train()
    opt_kl = torch.optim.Adam(model.parameters(), lr=kl_lr, weight_decay=1e-4)
    opt_ce = torch.optim.Adam(model.parameters(), lr=impair_lr, weight_decay=1e-4)
    cf_loader = DataLoader(tuples, batch_size=32, shuffle=True, num_workers=0)
    r_loader = DataLoader(Subset(ds, sample.tolist()), batch_size=32, shuffle=True, num_workers=0)

    def kl_sum(log_p, log_q):
        return (log_p.exp() * (log_p - log_q)).sum()

    # Step 3.
    for _ in range(epochs):
        for (x_f, y_f, x_cf, y_cf), (x_r, y_r) in zip(cf_loader, r_loader):
            with torch.no_grad():
                t_r = F.log_softmax(original(x_r)[1], 1)
                t_cf = F.log_softmax(original(x_cf)[1], 1)
            s_r = F.log_softmax(model(x_r)[1], 1)
            s_f = F.log_softmax(model(x_f)[1], 1)
            l_kl = 0.5 * kl_sum(t_r, s_r) + 0.5 * kl_sum(t_cf, s_f)
            opt_kl.zero_grad()
            l_kl.backward()
            opt_kl.step()
            l_ce = 0.9 * F.cross_entropy(model(x_r)[0], y_r) + 0.01 * F.cross_entropy(
                model(x_f)[0], y_cf
            )
            opt_ce.zero_grad()
            l_ce.backward()
            opt_ce.step()
    secs = time.perf_counter() - t0
    return {"work": f"camu-{args.scenario}", "pairs": len(forget), "epochs": epochs, "seconds": secs}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("work", choices=["train", "camu"])
    p.add_argument("--raw", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--scenario", choices=["random", "class"], default="random")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    out = train(args) if args.work == "train" else camu(args)
    out["process_seconds"] = time.perf_counter() - started
    out["impl"] = "pytorch"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
