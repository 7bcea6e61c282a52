"""Reference runs of the methods whose reference code lives in Jupyter notebooks: SCRUB and
NegGrad+ (meghdadk/SCRUB, at 98ffb11) and UNSIR (vikram2000b/Fast-Machine-Unlearning, at 252bc92).

`run(method, ctx, model, refs, work)` follows adapters.py's interface. Nothing of the references
is copied here: at run time the notebook's JSON is read from the user's checkout
(`refs/<repository>/`), the cells that define the method's functions and run its loops are found
by their content (a marker string; the first code cell holding every marker of a cell, with a
clear error where none does), and their source is executed in a namespace prepared with
camu-pipe's model, samples and seed. The repository's `.py` modules (SCRUB's
`thirdparty/repdistiller`) are imported from the checkout by the notebook's own import lines.

What is run, per method (cell numbers count every cell of the notebook, markdown included, as
docs/methods.md does; they are looked up by marker and recorded, not assumed):

- scrub, `large_scale_unlearning.ipynb` (the preset `large` camu-pipe follows):
  cell 0 (its `from thirdparty... import ...` lines: `DistillKL`, `adjust_learning_rate` as
  `sgda_adjust_learning_rate`, `train_distill`, `validate`, ... from the checkout);
  cell 26 (only `teacher = copy.deepcopy(model)` and `student = copy.deepcopy(model)`);
  cell 28 (only `def replace_loader_dataset` and the `forget_loader = ...` (batch 512) and
  `retain_loader = ...` (batch 256) lines); cells 32 (args), 33 (`model_t`, `model_s`),
  34 (criteria, SGD), 35 (`module_list.append(model_t)`) and 36 (the SCRUB loop), whole.
  The result is `model_s`.
- neggrad_plus, `large_scale_ictest.ipynb` (preset `large`): cell 1 (its `from thirdparty...`
  lines: `train_negrad`); cell 8 (only `def negative_grad`); cell 27 (`args.retain_bs`,
  `args.forget_bs`), whole; cell 28 (as for scrub: `def replace_loader_dataset`, `forget_loader`
  at `args.forget_bs`, `retain_loader`); cell 40 (NegGrad+: `args.ng_*`, `model_ng`, the retain
  loader at `args.ng_bs`, `negative_grad(...)`), whole. The result is `model_ng`.
- unsir, `Machine Unlearning.ipynb` (class removal only): cell 10 (only `batch_size = 256`);
  cell 17 (`class Noise`); cell 20 (the first `num_samples_per_class` = 1000 retained samples of
  each class), cell 24 (noise learning), cell 26 (impair) and cell 30 (repair), whole.
  The result is `model`, trained in place.

Cells not run, whose outcome is bound in the namespace instead (they load data, checkpoints,
torchvision models, or evaluate):
- SCRUB notebooks: dataset building (`datasets.get_loaders`, the marked-dataset slicing of cell
  28) -> `forget_dataset`, `retain_dataset` are camu-pipe's Df and Dr (`ctx.dataset`, prepared,
  unaugmented), `train_loader_full` is None (only passed through `replace_loader_dataset`);
  checkpoint loading (cell 26/22) -> `model` is camu-pipe's original model, wrapped by
  `adapters.Logits`, in the train mode it is loaded in; `args` (the `%run main_merged.py` /
  `main.py` argparse namespace) -> an argparse.Namespace with the fields these cells read before
  setting them: `batch_size` 128 (the `%run` line's `--batch-size 128`, only the unused default of
  `replace_loader_dataset`) and `print_freq` 500 (main.py:139's default); `seed` (`args.seed`,
  1 in the `%run` lines) -> `torch.initial_seed()`, the seed run.py gave the reference run
  (`--run-seed`, else the split's seed), which `replace_loader_dataset` re-seeds with;
  `manual_seed` (the notebook's `from utils import *`; SCRUB's utils.py imports torchvision and
  IPython) -> the `def manual_seed` of the checkout's utils.py, executed alone.
- Fast-Machine-Unlearning: cell 1 (imports, torchvision, `torch.manual_seed(100)`): not run, the
  run's seed applies; cells 7-9, 19 (download, ImageFolder, `classwise_train`) ->
  `classwise_train[c]` is a lazy list of camu-pipe's retained samples of class c in dataset order
  (prepared on access, so that the whole training set is never materialised), `train_ds` is
  camu-pipe's training set (only its length is read, in a print); cell 18 -> `classes` is
  `range(ctx.classes)`, `classes_to_forget` the split's forgotten classes; cells 12-15, 23
  (training or loading a torchvision ResNet-18) -> `model` is camu-pipe's original model (wrapped,
  in train mode as the notebook's freshly built one is).

Textual substitutions (each is checked to apply, and listed in the returned settings):
- every cell: IPython magic lines (`%...`, `!...`) removed before parsing (the SCRUB notebooks'
  import cells 0 / 1 have `%load_ext autoreload`, `%autoreload 2`, `%matplotlib inline`; UNSIR's
  cells 24, 26 and 30 have `%%time`);
- UNSIR cell 24: `Noise(batch_size, 3, 32, 32)` -> `Noise(batch_size, C, H, W)` with the data's
  channels, height and width (the notebook's noise has CIFAR's resolution; docs/methods.md, unsir);
- UNSIR, only where the model takes 224x224 inputs (`resnet18`): cell 24 `model(inputs)` ->
  `model(to_input(inputs))` and cell 26 `noises[cls]().cpu()` -> `to_input(noises[cls]()).cpu()`,
  `to_input` the bilinear resize camu-pipe's unsir applies (crates/torch/src/methods/unsir.rs).

Other adaptations, none of them textual:
- `.cuda()` on tensors and modules is the identity (CPU), as in adapters.py;
- SCRUB's `validate` (thirdparty/repdistiller/helper/loops.py) is replaced in the namespace by a
  stand-in returning zeros: cell 36 calls it on Dr, Df and the validation set before every epoch
  and after the last, for its error curves only (it sets the student to eval mode, which
  `train_distill` undoes); `valid_loader_full` is None;
- optimizers built while a cell runs are recorded (torch.optim.SGD / Adam subclasses that note
  their settings; the optimisation is unchanged), for the returned settings;
- statements are selected from a cell with Python's `ast` (definitions by name, assignments by
  target, imports by module), never by line numbers.
The prints of the training loops stay (stdout; run.py reads only its RESULT line).
"""

import argparse
import ast
import copy
import json
import linecache
import os
import random
import re
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import adapters

SCRUB, FMU = "SCRUB", "Fast-Machine-Unlearning"

#: method -> the folder (repository name) of its reference checkout under `refs`.
METHODS = {"scrub": SCRUB, "neggrad_plus": SCRUB, "unsir": FMU}

REPOSITORIES = {SCRUB: "meghdadk/SCRUB", FMU: "vikram2000b/Fast-Machine-Unlearning"}
NOTEBOOKS = {
    "scrub": "large_scale_unlearning.ipynb",
    "neggrad_plus": "large_scale_ictest.ipynb",
    "unsir": "Machine Unlearning.ipynb",
}


# ----------------------------------------------------------------------------------------------
# Notebooks


class Notebook:
    """A notebook of a checkout: its cells found by content and run in a namespace, with a log of
    what ran (cell, markers, the statements kept, substitutions, optimizers built)."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing; check out the reference repository at the commit "
                                    "docs/methods.md names")
        with open(path, encoding="utf-8") as f:
            self.cells = json.load(f)["cells"]
        self.path, self.name = path, os.path.basename(path)
        self.log = []

    @staticmethod
    def _source(cell):
        s = cell.get("source", "")
        return "".join(s) if isinstance(s, list) else s

    def find(self, *markers):
        """(index, source) of the first code cell that holds every marker."""
        hits = [i for i, c in enumerate(self.cells)
                if c.get("cell_type") == "code" and all(m in self._source(c) for m in markers)]
        if not hits:
            raise LookupError(f"{self.path}: no code cell contains {' and '.join(map(repr, markers))}; "
                              "this adaptation reads the notebook at the commit docs/methods.md names")
        return hits[0], self._source(self.cells[hits[0]]), hits[1:]

    def run(self, ns, markers, keep=None, subs=(), what="", produces=()):
        """Executes the cell found by `markers` in `ns`: its statements for which `keep(node)` is
        true (all where None), after the textual substitutions `subs` ((old, new) pairs, each
        required to apply); the names in `produces` must be bound afterwards. Returns the settings
        of the optimizers built meanwhile."""
        idx, src, others = self.find(*markers)
        applied = []
        lines = src.split("\n")
        magics = [ln for ln in lines if ln.lstrip().startswith(("%", "!"))]
        if magics:
            src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
            applied += [f"removed IPython magic `{m.strip()}`" for m in magics]
        for old, new in subs:
            if old not in src:
                raise LookupError(f"{self.path}, cell {idx}: `{old}` not found; the substitution this "
                                  "adaptation needs no longer applies (another commit?)")
            src = src.replace(old, new)
            applied.append(f"`{old}` -> `{new}`")
        tree = ast.parse(src)
        kept = tree.body if keep is None else [n for n in tree.body if keep(n)]
        if keep is not None and not kept:
            raise LookupError(f"{self.path}, cell {idx}: none of the statements this adaptation runs "
                              f"({what}) is there")
        fname = f"<{self.name} cell {idx}>"
        linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
        code = compile(ast.Module(body=kept, type_ignores=[]), fname, "exec")
        with _RecordOptimizers() as rec:
            exec(code, ns)
        missing = [n for n in produces if n not in ns]
        if missing:
            raise LookupError(f"{self.path}, cell {idx}: running it bound no {', '.join(missing)}; "
                              "this adaptation reads the notebook at the commit docs/methods.md names")
        entry = {"cell": idx, "markers": list(markers),
                 "ran": "whole cell" if keep is None else what or [ast.unparse(n).split("\n")[0] for n in kept]}
        if others:
            entry["same markers also in cells"] = others
        if applied:
            entry["substitutions"] = applied
        if rec.made:
            entry["optimizers"] = rec.made
        self.log.append(entry)
        return rec.made


def defines(*names):
    return lambda n: isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names


def assigns(*names):
    return lambda n: (isinstance(n, ast.Assign)
                      and all(isinstance(t, ast.Name) and t.id in names for t in n.targets))


def either(*preds):
    return lambda n: any(p(n) for p in preds)


def imports_from(prefix):
    return lambda n: isinstance(n, ast.ImportFrom) and (n.module or "").startswith(prefix)


def function_from_file(path, name, ns):
    """Executes the `def name` of a .py file of the checkout alone (its module cannot be imported
    here) in `ns` and returns it."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    nodes = [n for n in ast.parse(src).body if defines(name)(n)]
    if not nodes:
        raise LookupError(f"{path}: no `def {name}`")
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), ns)
    return ns[name]


class _RecordOptimizers:
    """torch.optim.SGD and Adam, while a cell runs, as subclasses that note their settings."""

    KEYS = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "amsgrad")

    def __enter__(self):
        self.made, self.saved = [], {}
        for name in ("SGD", "Adam"):
            orig = getattr(torch.optim, name)
            made = self.made

            def init(self_, params, *a, _orig=orig, _name=name, **k):
                _orig.__init__(self_, params, *a, **k)
                g = self_.param_groups[0]
                made.append({"optimizer": _name, **{key: (list(g[key]) if isinstance(g[key], tuple) else g[key])
                                                     for key in self.KEYS if key in g}})

            self.saved[name] = orig
            setattr(torch.optim, name, type(name, (orig,), {"__init__": init}))
        return self

    def __exit__(self, *exc):
        for name, orig in self.saved.items():
            setattr(torch.optim, name, orig)
        return False


# ----------------------------------------------------------------------------------------------
# Shared set-up


def _cpu():
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self


def _namespace(**extra):
    ns = {"__name__": "__notebook__", "torch": torch, "nn": nn, "F": F, "np": np, "copy": copy,
          "optim": torch.optim, "DataLoader": torch.utils.data.DataLoader, "random": random}
    ns.update(extra)
    return ns


def _import_thirdparty(nb, ns, root, markers):
    """The notebook's own `from thirdparty... import ...` lines, with the checkout on sys.path."""
    sys.path.insert(0, root)
    # The checkout stays as the user left it: no __pycache__ written there.
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        nb.run(ns, markers, keep=imports_from("thirdparty."), what="its `from thirdparty... import` lines")
    finally:
        sys.path.remove(root)
        sys.dont_write_bytecode = dont_write
    where = os.path.dirname(sys.modules["thirdparty.repdistiller.helper.loops"].__file__)
    if not os.path.abspath(where).startswith(os.path.abspath(root)):
        raise ImportError(f"thirdparty.repdistiller was imported from {where}, not from {root}")


def _validate_skipped(val_loader, model, criterion, opt, quiet=False):
    """Stands for repdistiller's `validate` (evaluation only): no pass, zero accuracies."""
    z = torch.zeros(())
    return z, z, 0.0


def _scrub_inputs(ctx, net, root):
    seed = torch.initial_seed()
    ns = _namespace(model=net, forget_dataset=ctx.dataset("forget"), retain_dataset=ctx.dataset("remain"),
                    train_loader_full=None, valid_loader_full=None, seed=seed,
                    args=argparse.Namespace(batch_size=128, print_freq=500, seed=seed))
    function_from_file(os.path.join(root, "utils.py"), "manual_seed", ns)
    return ns


def _loader_facts(loader):
    return {"batch_size": loader.batch_size,
            "shuffle": isinstance(loader.sampler, torch.utils.data.RandomSampler), "samples": len(loader.dataset)}


BOUND_SCRUB = {
    "model": "camu-pipe's original model (adapters.Logits: logits only), train mode as loaded",
    "forget_dataset": "ctx.dataset('forget'): Df, prepared, unaugmented",
    "retain_dataset": "ctx.dataset('remain'): Dr, prepared, unaugmented",
    "train_loader_full": "None (only passed through replace_loader_dataset)",
    "seed": "torch.initial_seed(): the reference run's seed set by run.py (--run-seed, else the split's seed)",
    "args": "argparse.Namespace(batch_size=128 (the %run line), print_freq=500 (main.py:139), seed)",
    "manual_seed": "`def manual_seed` of the checkout's utils.py, run alone",
    "validate": "scrub only: a stand-in returning zeros (loops.validate evaluates, for the error curves)",
    "valid_loader_full": "None (read by validate alone)",
}


# ----------------------------------------------------------------------------------------------
# Methods


def _scrub(ctx, net, root):
    nb = Notebook(os.path.join(root, NOTEBOOKS["scrub"]))
    ns = _scrub_inputs(ctx, net, root)
    _import_thirdparty(nb, ns, root, ["from thirdparty.repdistiller.helper.loops import", "train_distill"])
    # Evaluation only: between epochs, for the notebook's error curves.
    ns["validate"] = _validate_skipped
    nb.run(ns, ["teacher = copy.deepcopy(model)", "student = copy.deepcopy(model)"],
           keep=assigns("teacher", "student"), produces=("teacher", "student"),
           what="`teacher = copy.deepcopy(model)`, `student = copy.deepcopy(model)`")
    nb.run(ns, ["def replace_loader_dataset", "forget_loader = replace_loader_dataset"],
           keep=either(defines("replace_loader_dataset"), assigns("forget_loader", "retain_loader")),
           what="`def replace_loader_dataset`, `forget_loader = ...`, `retain_loader = ...`",
           produces=("replace_loader_dataset", "forget_loader", "retain_loader"))
    nb.run(ns, ["args.sgda_epochs =", "args.msteps ="])
    nb.run(ns, ["model_s = copy.deepcopy(student)"])
    nb.run(ns, ["criterion_div = DistillKL(args.kd_T)", "optimizer = optim.SGD"])
    nb.run(ns, ["module_list.append(model_t)"])
    nb.run(ns, ["SCRUB unlearning", "train_distill("], produces=("model_s", "lr"))
    a = ns["args"]
    hp = {k: getattr(a, k) for k in ("optim", "sgda_learning_rate", "sgda_momentum", "sgda_weight_decay",
                                     "lr_decay_epochs", "lr_decay_rate", "sgda_epochs", "msteps", "kd_T",
                                     "gamma", "alpha", "beta", "distill", "smoothing", "clip", "sstart",
                                     "sgda_batch_size", "del_batch_size")}
    hp["unused_by_the_loop"] = ["smoothing", "clip", "sstart", "sgda_batch_size", "del_batch_size"]
    hp["forget_loader"] = _loader_facts(ns["forget_loader"])
    hp["retain_loader"] = _loader_facts(ns["retain_loader"])
    hp["lr_last_epoch"] = float(ns["lr"])
    return ns["model_s"], nb, hp, BOUND_SCRUB


def _neggrad_plus(ctx, net, root):
    nb = Notebook(os.path.join(root, NOTEBOOKS["neggrad_plus"]))
    ns = _scrub_inputs(ctx, net, root)
    _import_thirdparty(nb, ns, root, ["from thirdparty.repdistiller.helper.loops import", "train_negrad"])
    nb.run(ns, ["def negative_grad"], keep=defines("negative_grad"), what="`def negative_grad`",
           produces=("negative_grad",))
    nb.run(ns, ["args.forget_bs =", "args.retain_bs ="])
    nb.run(ns, ["def replace_loader_dataset", "forget_loader = replace_loader_dataset"],
           keep=either(defines("replace_loader_dataset"), assigns("forget_loader", "retain_loader")),
           what="`def replace_loader_dataset`, `forget_loader = ...`, `retain_loader = ...`",
           produces=("replace_loader_dataset", "forget_loader", "retain_loader"))
    made = nb.run(ns, ["args.ng_alpha =", "negative_grad(model_ng"], produces=("model_ng",))
    a = ns["args"]
    hp = {k: getattr(a, k) for k in ("ng_alpha", "ng_epochs", "ng_lr", "ng_bs", "forget_bs", "retain_bs")}
    hp["retain_bs_note"] = "args.retain_bs (cell 27) builds a retain loader that cell 40 replaces (batch args.ng_bs)"
    hp["optimizer"] = made[0] if made else None
    hp["model_mode"] = "train (train_negrad: model.train())"
    hp["forget_loader"] = _loader_facts(ns["forget_loader"])
    hp["retain_loader"] = _loader_facts(ns["retain_loader"])
    bound = {k: v for k, v in BOUND_SCRUB.items() if k not in ("validate", "valid_loader_full")}
    return ns["model_ng"], nb, hp, bound


class _ClassSamples:
    """`classwise_train[c]`: (image, label) pairs of the retained samples of class c in dataset
    order, prepared when accessed (a slice gives a list, as the notebook's list does)."""

    def __init__(self, dataset):
        self.ds = dataset

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self.ds[i] for i in range(*k.indices(len(self.ds)))]
        return self.ds[k]

    def __iter__(self):
        return (self.ds[i] for i in range(len(self.ds)))


def _unsir(ctx, net, root):
    from camu_pipe.data import ImageSet

    split = ctx.split
    if split.scenario != "class" or not split.classes:
        raise ValueError(f"unsir applies to class removal; this split is {split.scenario}")
    forgotten = sorted(int(c) for c in split.classes)
    nb = Notebook(os.path.join(root, NOTEBOOKS["unsir"]))
    meta = ctx.data.meta
    c, h, w = int(meta["channels"]), int(meta["height"]), int(meta["width"])
    resize = ctx.arch == "resnet18"

    def to_input(x):
        return F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) if resize else x

    remain = torch.sort(ctx.indices("remain")).values
    labels = ctx.data.train_y[remain]
    if any(int(k) in forgotten for k in labels.unique()):
        raise ValueError("Dr holds samples of a forgotten class; UNSIR's notebook takes retained samples "
                         "from the other classes only")
    classwise = {k: _ClassSamples(ImageSet(ctx.data.train_x, ctx.data.train_y, remain[labels == k],
                                           ctx.family, ctx.arch)) for k in range(ctx.classes)}
    # The notebook's model is a freshly built torchvision ResNet-18: train mode.
    net.train()
    ns = _namespace(model=net, classes=list(range(ctx.classes)), classes_to_forget=forgotten,
                    classwise_train=classwise, train_ds=ctx.dataset("all"), to_input=to_input)
    nb.run(ns, ["batch_size = 256", "train_dl = DataLoader"], keep=assigns("batch_size"), what="`batch_size = 256`",
           produces=("batch_size",))
    nb.run(ns, ["class Noise(nn.Module)"], keep=defines("Noise"), what="`class Noise`", produces=("Noise",))
    nb.run(ns, ["num_samples_per_class =", "retain_samples"], produces=("retain_samples",))
    subs = [("Noise(batch_size, 3, 32, 32)", f"Noise(batch_size, {c}, {h}, {w})")]
    if resize:
        subs.append(("outputs = model(inputs)", "outputs = model(to_input(inputs))"))
    noise_opts = nb.run(ns, ["noises[cls] = Noise(", "num_steps ="], subs=subs, produces=("noises",))
    subs = [("batch = noises[cls]().cpu()", "batch = to_input(noises[cls]()).cpu()")] if resize else []
    impair_opts = nb.run(ns, ["noisy_loader =", "noisy_data"], subs=subs, produces=("noisy_loader", "other_samples"))
    repair_opts = nb.run(ns, ["heal_loader =", "other_samples"], produces=("heal_loader",))
    src24 = nb.find("noises[cls] = Noise(", "num_steps =")[1]
    l2 = re.search(r"\+\s*([0-9.eE+-]+)\s*\*\s*torch\.mean\(torch\.sum\(torch\.square", src24)
    n_noise = len(ns["noisy_data"]) - len(ns["other_samples"])
    hp = {
        "classes_to_forget": forgotten,
        "batch_size": ns["batch_size"],
        "noise_shape": [ns["batch_size"], c, h, w],
        "noise_resized_to_224": resize,
        "noise_epochs": ns["num_epochs"], "noise_steps_per_epoch": ns["num_steps"],
        "noise_optimizer": noise_opts[0] if noise_opts else None,
        "noise_l2": float(l2.group(1)) if l2 else "see cell 24",
        "num_batches": ns["num_batches"],
        "noise_per_round": n_noise // max(1, ns["num_batches"] * len(forgotten)),
        "noise_per_round_note": "`for i in range(batch[0].size(0))`: the noise's channel count",
        "noise_samples": n_noise,
        "noise_label": ns["class_num"],
        "num_samples_per_class": ns["num_samples_per_class"],
        "retained_samples": len(ns["other_samples"]),
        "impair_optimizer": impair_opts[0] if impair_opts else None,
        "impair_loader": _loader_facts(ns["noisy_loader"]),
        "repair_optimizer": repair_opts[0] if repair_opts else None,
        "repair_loader": _loader_facts(ns["heal_loader"]),
        "model_mode": "train (noise learning, impair and repair alike)",
        # The notebook takes them from the whole training set; Dr is the same samples when the
        # split removes every sample of the forgotten classes.
        "remain_is_all_of_the_other_classes":
            sum(int((ctx.data.train_y == k).sum()) for k in range(ctx.classes) if k not in forgotten) == len(remain),
    }
    bound = {
        "model": "camu-pipe's original model (adapters.Logits), set to train mode as the notebook's fresh ResNet-18",
        "classes": f"list(range({ctx.classes}))",
        "classes_to_forget": f"the split's forgotten classes {forgotten}",
        "classwise_train": "per class, the retained samples (ctx.indices('remain'), sorted) in dataset order, "
                           "prepared lazily",
        "train_ds": "camu-pipe's training set (its length is printed)",
        "to_input": "resize to 224x224 (resnet18) or identity",
        "not run": "cell 1 (imports, torch.manual_seed(100)): the run's seed applies",
    }
    return net, nb, hp, bound


RUNNERS = {"scrub": _scrub, "neggrad_plus": _neggrad_plus, "unsir": _unsir}


def run(method, ctx, model, refs, work):
    """Runs the reference notebook's code for `method` on camu-pipe's `model` (trained in place,
    or on copies as the notebook makes them); returns the unlearned model (logits only) and the
    settings used."""
    if method not in METHODS:
        raise KeyError(f"no notebook adaptation for `{method}`; known: {sorted(METHODS)}")
    repo = METHODS[method]
    root = os.path.abspath(os.path.join(refs, repo))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: missing; check out {REPOSITORIES[repo]} there")
    _cpu()
    net = adapters.Logits(model)
    out, nb, hp, bound = RUNNERS[method](ctx, net, root)
    settings = {
        "repository": REPOSITORIES[repo], "commit": adapters.commit_of(root), "notebook": nb.name,
        "cells": nb.log, "bound": bound, **hp,
        "substitutions": [s for e in nb.log for s in (f"cell {e['cell']}: {x}" for x in e.get("substitutions", []))],
        "stand_ins": (["thirdparty.repdistiller.helper.loops.validate -> zeros (evaluation only)"]
                      if method == "scrub" else []) + [".cuda() -> identity"],
    }
    return out, settings
