"""Checks pipelines/methods/fisher_forgetting.py's Fisher diagonal (one backward pass per class
to every layer's output) against per-sample gradients from torch.func, on the CNN and the CIFAR
ResNet-18 with non-trivial batch-norm statistics. Exit 0 when they agree to 1e-4 relative."""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "pipelines", "methods"))
import fisher_forgetting as ff  # noqa: E402

from camu_pipe import models  # noqa: E402


class Batches:
    """What fisher_diagonal reads of a context: a loader over Dr, and a log."""

    def __init__(self, x, batch):
        self.x, self.batch = x, batch

    def loader(self, part, batch_size, shuffle):
        outer = self

        class Loader:
            indices = range(len(outer.x))

            def __iter__(self):
                for k in range(0, len(outer.x), batch_size):
                    yield outer.x[k:k + batch_size], None

        return Loader()

    def log(self, *args):
        pass


def main():
    torch.manual_seed(0)
    bad = []
    for arch, shape in [("cnn", (1, 28, 28)), ("resnet18_cifar", (3, 32, 32))]:
        m = models.build(arch, shape[0], 10).eval()
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
        x = torch.randn(12, *shape)
        fast = ff.fisher_diagonal(Batches(x, 5), m, 5)
        slow = ff.fisher_diagonal_vmap(m, x)
        for k in slow:
            rel = ((fast[k] - slow[k]).abs().max() / slow[k].abs().max()).item()
            if not rel <= 1e-4:
                bad.append(f"{arch}: {k} differs by {rel:.3g} (relative)")
        print(f"{arch}: {len(slow)} parameters checked")
    for b in bad:
        print("MISMATCH:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
