"""Checks the camu_pipe Python package against what camu-worker computed (tests/python.rs writes
the expectations with camu_torch). Exit 0 when everything matches, 1 with the differences
otherwise.

usage:
  parity.py models DIR [--perturb-weight]   DIR/ARCH/ holds model.* and expected.safetensors
  parity.py loaders DIR [--perturb-mean]    DIR/CASE/ holds the dataset, split.json, a model and
                                            expected.safetensors
"""

import os
import sys

import torch
from safetensors.torch import load_file

import camu_pipe
from camu_pipe import data as cdata
from camu_pipe.stage import Context

TOL = 1e-5


def models(root, perturb):
    failures = []
    for arch in sorted(os.listdir(root)):
        d = os.path.join(root, arch)
        exp = load_file(os.path.join(d, "expected.safetensors"))
        model = camu_pipe.load_model(d)
        if perturb:
            with torch.no_grad():
                p = next(iter(model.parameters()))
                p.view(-1)[0] += 1e-3
        with torch.no_grad():
            logits, emb = model.eval()(exp["x"])
        diffs = {"logits (eval)": (logits - exp["logits_eval"]).abs().max().item(),
                 "embedding (eval)": (emb - exp["emb_eval"]).abs().max().item()}
        with torch.no_grad():
            logits, emb = model.train()(exp["x"])
        diffs["logits (train)"] = (logits - exp["logits_train"]).abs().max().item()
        diffs["embedding (train)"] = (emb - exp["emb_train"]).abs().max().item()
        for what, d in diffs.items():
            print(f"{arch}: {what}: largest difference {d:.3g}")
            if not d <= TOL:
                failures.append(f"{arch}: {what} differs by {d:.3g} (> {TOL})")
    return failures


def crops_of(padded, sample, pad):
    """Whether `sample` is a crop of `padded` of the original size, possibly flipped."""
    h, w = sample.shape[1:]
    for t in range(2 * pad + 1):
        for l in range(2 * pad + 1):
            c = padded[:, t:t + h, l:l + w]
            if torch.allclose(c, sample, atol=1e-6) or torch.allclose(c.flip(2), sample, atol=1e-6):
                return True
    return False


def loaders(root, perturb):
    if perturb:
        cdata.MEAN = (cdata.MEAN[0] + 1e-3,) + tuple(cdata.MEAN[1:])
    failures = []
    for case in sorted(os.listdir(root)):
        d = os.path.join(root, case)
        exp = load_file(os.path.join(d, "expected.safetensors"))
        dataset, split = cdata.Dataset(d), cdata.Split(os.path.join(d, "split.json"))
        spec = {"stage": "parity", "params": {}, "seed": 0, "threads": 1, "out_dir": d, "original": d}
        ctx = Context(spec, dataset, split, "cpu")
        for part in ("all", "forget", "remain", "sample", "test", "validation"):
            idx = ctx.indices(part)
            if not torch.equal(idx, exp[f"{part}_indices"]):
                failures.append(f"{case}/{part}: indices differ")
                continue
            n = exp[f"{part}_x"].shape[0]
            x, y = next(iter(ctx.loader(part, batch_size=n, shuffle=False)))
            dx = (x - exp[f"{part}_x"]).abs().max().item()
            print(f"{case}/{part}: {len(idx)} indices equal; first {n} samples: largest difference {dx:.3g}")
            if not dx <= TOL:
                failures.append(f"{case}/{part}: prepared samples differ by {dx:.3g}")
            if not torch.equal(y, exp[f"{part}_y"]):
                failures.append(f"{case}/{part}: labels differ")
            # The map-style dataset (for torch's DataLoader) yields the same samples one by one.
            ds = ctx.dataset(part)
            xs = torch.stack([ds[k][0] for k in range(n)])
            ys = torch.stack([torch.as_tensor(ds[k][1]) for k in range(n)])
            if len(ds) != len(idx) or not (xs - exp[f"{part}_x"]).abs().max().item() <= TOL \
                    or not torch.equal(ys, exp[f"{part}_y"]):
                failures.append(f"{case}/{part}: ctx.dataset's samples differ from the loader's")
        # Augmentation: the CIFAR stem's inputs are 4-pixel padded random crops, flipped or not, of
        # the normalised image.
        if ctx.arch == "resnet18_cifar":
            clean = ctx.prepare(dataset.train_x[:8])
            torch.manual_seed(1)
            aug = ctx.prepare(dataset.train_x[:8], augment=True)
            # Padding happens before normalisation: a padded pixel is (0 - mean) / std.
            zero = ctx.prepare(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))[0]
            for i in range(8):
                p = torch.nn.functional.pad(clean[i], (4, 4, 4, 4))
                border = torch.ones_like(p, dtype=torch.bool)
                border[:, 4:-4, 4:-4] = False
                p = torch.where(border, zero.expand_as(p), p)
                if not crops_of(p, aug[i], 4):
                    failures.append(f"{case}: augmented sample {i} is not a padded crop (or its flip)")
            print(f"{case}: augmented samples are padded crops or their flips")
    return failures


def main():
    what, root = sys.argv[1], sys.argv[2]
    perturb = len(sys.argv) > 3
    failures = {"models": models, "loaders": loaders}[what](root, perturb)
    for f in failures:
        print("MISMATCH:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
