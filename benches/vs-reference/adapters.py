"""How each reference repository's unlearning function is called on camu-pipe's inputs.

The adaptation is the least that lets the reference code run here, and nothing in its loops:
- the modules it imports for logging, pruning, plotting and ImageNet (`utils`, `pruner`,
  `trainer`, `imagenet`, `matplotlib`, `arg_parser`) are replaced by small stand-ins, so
  torchvision and the repositories' data code are not needed; `utils.AverageMeter` and
  `utils.accuracy` behave as the originals, the others are never reached with these arguments;
- `.cuda()` on tensors and modules is the identity (CPU);
- the model is camu-pipe's, wrapped so that its forward returns the logits alone, and the loaders
  are torch DataLoaders over camu-pipe's prepared samples (`ctx.dataset`), batch 256, shuffled,
  as OPTML's `replace_loader_dataset`;
- `args` holds the settings of `arg_parser.py` that the function reads, with the method's
  documented values (docs/methods.md) for lr, epochs and its own parameters.
"""

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import types

import torch
import torch.nn as nn

SPARSE, SALIENCY = "Unlearn-Sparse", "Unlearn-Saliency"

# The other references, one module each: method -> repository name, and `run` as below.
OTHER_MODULES = ("adapt_ssd", "adapt_notebooks", "adapt_camu")

# OPTML's methods: method -> (repository, the function's module and name, settings)
METHODS = {
    "finetune": (SPARSE, ("FT", "FT"), {"unlearn_lr": 0.01, "unlearn_epochs": 10}),
    "neggrad": (SPARSE, ("GA", "GA"), {"unlearn_lr": 1e-4, "unlearn_epochs": 5}),
    "l1_sparse": (SPARSE, ("FT", "FT_l1"), {"unlearn_lr": 0.01, "unlearn_epochs": 10, "alpha": 5e-4}),
    "random_label": (SALIENCY, ("RL", "RL"), {"unlearn_lr": 0.01, "unlearn_epochs": 10}),
    "salun": (SALIENCY, ("RL", "RL"), {"unlearn_lr": 0.013, "unlearn_epochs": 10, "sparsity": 0.5}),
    "boundary_shrink": (SALIENCY, ("boundary_sh", "boundary_shrink"), {"unlearn_lr": 0.01, "unlearn_epochs": 10}),
    "boundary_expand": (SALIENCY, ("boundary_ex", "boundary_expanding"), {"unlearn_lr": 0.01, "unlearn_epochs": 10}),
}


class Logits(nn.Module):
    """camu-pipe's model (forward: logits, embedding) as the references expect it (logits)."""

    def __init__(self, model):
        super().__init__()
        self.net = model

    def forward(self, x):
        return self.net(x)[0]


class AverageMeter:
    def __init__(self):
        self.val = self.avg = self.sum = self.count = 0

    def update(self, val, n=1):
        self.val, self.sum, self.count = val, self.sum + val * n, self.count + n
        self.avg = self.sum / self.count


def accuracy(output, target, topk=(1,)):
    k = max(topk)
    pred = output.topk(k, 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [correct[:j].reshape(-1).float().sum(0).mul_(100.0 / target.size(0)) for j in topk]


def _unused(name):
    def f(*a, **k):
        raise RuntimeError(f"{name} was called: this adaptation does not support it")
    return f


def install_stand_ins():
    mods = {}
    utils = types.ModuleType("utils")
    utils.AverageMeter, utils.accuracy, utils.warmup_lr = AverageMeter, accuracy, _unused("utils.warmup_lr")
    mods["utils"] = utils
    pruner = types.ModuleType("pruner")
    for n in ("extract_mask", "prune_model_custom", "remove_prune", "check_sparsity"):
        setattr(pruner, n, _unused(f"pruner.{n}"))
    mods["pruner"] = pruner
    trainer = types.ModuleType("trainer")
    trainer.validate = _unused("trainer.validate")
    mods["trainer"] = trainer
    imagenet = types.ModuleType("imagenet")
    imagenet.get_x_y_from_data_dict = _unused("imagenet.get_x_y_from_data_dict")
    mods["imagenet"] = imagenet
    mpl = types.ModuleType("matplotlib")
    mpl.pyplot = types.ModuleType("matplotlib.pyplot")
    mods["matplotlib"], mods["matplotlib.pyplot"] = mpl, mpl.pyplot
    mods["arg_parser"] = types.ModuleType("arg_parser")
    sys.modules.update(mods)
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self


def load_unlearn_package(unlearn_dir, module):
    """`unlearn.MODULE` from the checkout, without its `__init__.py` (which imports every method
    and their dependencies)."""
    pkg = types.ModuleType("unlearn")
    pkg.__path__ = [unlearn_dir]
    sys.modules["unlearn"] = pkg
    return importlib.import_module(f"unlearn.{module}")


def commit_of(path):
    out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def others():
    """The other references' adapter modules (imported on use: each imports this module)."""
    return [importlib.import_module(name) for name in OTHER_MODULES]


def repositories():
    """Every method with an adapter -> the repository (checkout folder name) it runs."""
    out = {m: v[0] for m, v in METHODS.items()}
    for mod in others():
        out.update(mod.METHODS)
    return out


def run(method, ctx, model, refs, work):
    """Runs the reference's function for `method` on a copy of `model`; returns the unlearned
    model (logits-only wrapper) and the settings used."""
    for mod in others():
        if method in mod.METHODS:
            return mod.run(method, ctx, model, refs, work)
    repo, (module, func), settings = METHODS[method]
    root = os.path.join(refs, repo)
    code = os.path.join(root, "Classification") if repo == SALIENCY else root
    install_stand_ins()
    fn = getattr(load_unlearn_package(os.path.join(code, "unlearn"), module), func)
    net = Logits(model)
    loaders = {
        part: torch.utils.data.DataLoader(ctx.dataset(name), batch_size=256, shuffle=True)
        for part, name in (("forget", "forget"), ("retain", "remain"))
    }
    args = argparse.Namespace(
        unlearn=func, unlearn_lr=settings["unlearn_lr"], unlearn_epochs=settings["unlearn_epochs"],
        momentum=0.9, weight_decay=5e-4, batch_size=256, decreasing_lr="91,136", rewind_epoch=0,
        rewind_pth=None, imagenet_arch=False, arch="camu-pipe", warmup=0, print_freq=10**9,
        alpha=settings.get("alpha", 0.0), no_l1_epochs=0, num_classes=ctx.classes, dataset="cifar10",
        gpu=0, save_dir=work, lr=settings["unlearn_lr"], seed=ctx.seed,
    )
    criterion = nn.CrossEntropyLoss()
    if method == "salun":
        spec = importlib.util.spec_from_file_location("generate_mask", os.path.join(code, "generate_mask.py"))
        gm = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gm)
        gm.save_gradient_ratio(loaders, net, criterion, args)
        mask = torch.load(os.path.join(work, f"with_{settings['sparsity']}.pt"))
        fn(loaders, net, criterion, args, mask)
    else:
        fn(loaders, net, criterion, args)
    return net, {"repository": repo, "commit": commit_of(root), "function": f"unlearn/{module}.py: {func}",
                 **settings, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256}


@torch.no_grad()
def evaluate(ctx, net):
    """RA, FA, TA as camu-pipe's evaluate computes them: eval mode, unaugmented, argmax over the
    K classes (boundary_expand's shadow class is pruned, as camu-pipe does)."""
    net.eval()
    acc, bad, total = {}, 0, 0
    for key, part in (("RA", "remain"), ("FA", "forget"), ("TA", "test")):
        right = seen = 0
        for x, y in ctx.loader(part, batch_size=1024, shuffle=False):
            logits = net(x)[:, :ctx.classes]
            right += (logits.argmax(1) == y).sum().item()
            bad += (~torch.isfinite(logits).all(1)).sum().item()
            seen += len(y)
        acc[key] = right / max(seen, 1)
        total += seen
    # argmax of a NaN row is 0: such accuracies say nothing about the method.
    acc["nonfinite_rows"] = bad / max(total, 1)
    return acc
