"""SSD, Amnesiac and Bad Teacher: each reference repository's own function on camu-pipe's inputs.

    ssd          if-loops/selective-synaptic-dampening (cdfdc0e): `ssd_tuning` of
                 src/forget_full_class_strategies.py, which runs src/ssd.py's
                 `ParameterPerturber` (`calc_importance` on Df, then on D; `modify_weight`)
    amnesiac     the same repository: `amnesiac` of src/forget_full_class_strategies.py (class
                 removal) or src/forget_random_strategies.py (random removal), which trains with
                 src/unlearn.py's `fit_one_unlearning_cycle`
    bad_teacher  vikram2000b/bad-teaching-unlearning (f1aa988): unlearn.py's
                 `blindspot_unlearner` (`unlearning_step`, `UnlearnerLoss`, dataset.py's
                 `UnLearningData`), called as its notebook calls it

`run(method, ctx, model, refs, work)` follows adapters.py's interface and returns the unlearned
network (logits only) and the settings used. The scenario is the split's (`ctx.split.scenario`;
inferred from the labels for a split.json without it): `class` with one class, or `random`,
the two the references cover.

Settings (camu-pipe's documented defaults, docs/methods.md, read from these references):
- ssd: alpha = `selection_weighting` 10 and lambda = `dampening_constant` 1
  (forget_*_main.py `kwargs`, `model_size_scaler` 1 for non-ViT), `lower_bound` 1 and
  `exponent` 1 (ssd_tuning's `parameters`); batch 64 in class removal (forget_full_class_main.py
  `-b` default) and 128 in random removal (forget_random_main.py `-b` default, and its
  hard-coded 128 for the Df/Dr loaders); importances computed in eval mode.
- amnesiac: Adam lr 1e-4, 3 epochs (`fit_one_unlearning_cycle(3, ..., lr=0.0001)`), batch 128
  shuffled, Df relabelled once to a random other class, all of Dr.
- bad_teacher: Adam lr 1e-4, 1 epoch, batch 256, `KL_temperature` 1,
  `random.sample(retain_train, int(0.3 * len(retain_train)))` (the notebook's cell 15 and 6).

Adaptations (nothing inside the references' loops is changed):
- Imports that cannot be met here (torchvision, tqdm, sklearn, scipy, seaborn, matplotlib, wandb)
  are stand-in modules whose objects can be built and subclassed but do nothing; none of them is
  reached by the functions called. The repositories' own `unlearn`, `utils`, `ssd`, `conf`,
  `metrics`, `datasets`/`dataset` and `training_utils` are imported from the checkouts (each
  repository's modules are cleared from `sys.modules` first, since both define `unlearn`/`utils`).
- Evaluation is stubbed so that it costs nothing: the strategy modules' `get_metric_scores`
  (test/retain accuracy, ZRF, MIA, called at the end of `ssd_tuning` and `amnesiac`) returns NaNs,
  and SSD's unlearn.py `evaluate` (called by `fit_one_unlearning_cycle` after each epoch on
  `retain_valid_dl`, and printed by `epoch_end`) only puts the model in eval mode, as the original
  does first, and returns NaN loss/accuracy. RA/FA/TA come from adapters.evaluate afterwards.
- `.cuda()` on tensors and modules is the identity; `device` is the context's ("cpu" in run.py).
- Samples are camu-pipe's prepared samples (`ctx.dataset(part)`, no augmentation, as the
  references' unlearning transforms have none), given as the repositories' datasets give them:
  `(x, torch.Tensor([]), y)` with `y` an int (their Cifar10/Cifar100 `__getitem__`), in sequences
  that prepare a sample when it is read (the references' lists hold prepared tensors; the values
  are the same, and random.sample and indexing work on both).
- Loaders are built as the references' mains build them. Class removal: D (Dr and Df together, in
  dataset order) and the test set go through the repository's own `get_classwise_ds` and
  `build_retain_forget_sets`, so Dr is sorted by class; `forget_train_dl` unshuffled and
  `retain_train_dl` shuffled at batch 64, `full_train_dl` = unshuffled ConcatDataset(Dr, Df).
  Random removal: camu-pipe's split stands for `random_split` (its order, ascending indices);
  Df/Dr loaders at 128 (Df unshuffled, Dr shuffled), `full_train_dl` = ConcatDataset(Dr, Df) at
  `-b` 128, `forget_valid_dl` = `forget_train_dl`, `retain_valid_dl` = `valid_dl` = the test set.
  The validation loaders' `num_workers=4` (never iterated here) is 0.
- Random removal's `ssd_tuning` in src/forget_random_strategies.py cannot run at cdfdc0e: it assigns
  `ssd = ssd.ParameterPerturber(...)` (line 339), which makes `ssd` local to the function and
  raises UnboundLocalError. Its body is otherwise the full-class file's `ssd_tuning` (which names
  the perturber `pdr`), so that function is called in both scenarios, with each scenario's loaders.
- `unlearning_teacher` (required by the SSD repository's signatures, used only by the stubbed
  metrics) and bad_teacher's incompetent teacher are fresh models of the original's architecture
  (camu_pipe.models.build from the saved spec, whose ResNets have torchvision's initialisation,
  as the references' randomly initialised torchvision ResNet-18).
- bad_teacher: the student is a copy of the original left in train mode (the notebook's freshly
  built student), the good teacher the original in eval mode; the notebook's `num_workers=32` is 0
  (workers do not change the batches).
- Python's `random` and numpy are seeded with torch's seed (`torch.initial_seed()`, which run.py
  sets from --seed/--run-seed), as the references' mains seed all three with `-seed`.
"""

import collections.abc
import copy
import importlib
import importlib.machinery
import os
import random
import sys
import types

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import ConcatDataset, DataLoader

import adapters

SSD_REPO, BT_REPO = "selective-synaptic-dampening", "bad-teaching-unlearning"

METHODS = {"ssd": SSD_REPO, "amnesiac": SSD_REPO, "bad_teacher": BT_REPO}

# Modules the checkouts define: cleared before importing from one of them.
_REPO_MODULES = ("unlearn", "utils", "ssd", "conf", "metrics", "datasets", "dataset", "training_utils",
                 "models", "model", "resnet", "forget_full_class_strategies", "forget_random_strategies")
# Third-party imports the repositories make that are not needed by the functions called.
_STAND_IN_MODULES = ("torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.models",
                     "tqdm", "sklearn", "sklearn.linear_model", "sklearn.model_selection", "sklearn.svm",
                     "scipy", "scipy.stats", "seaborn", "matplotlib", "matplotlib.pyplot", "wandb",
                     "transformers")
_on_path = []


class _StandIn:
    """Any object of a stand-in module: it can be built and subclassed; calling it is an error."""

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        raise RuntimeError(f"{type(self).__name__} (a stand-in) was called: this adaptation does not support it")


def _stand_in_module(name):
    m = types.ModuleType(name)
    m.__path__ = []
    # A spec without origin: importlib.util.find_spec (torch._dynamo looks some of these up) works.
    m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        cls = type(attr, (_StandIn,), {})
        setattr(m, attr, cls)
        return cls

    m.__getattr__ = __getattr__
    return m


def install_stand_ins():
    for name in _STAND_IN_MODULES:
        mod = sys.modules.get(name)
        if mod is None or getattr(mod, "__getattr__", None) is None and not hasattr(mod, "__file__"):
            # Absent, or adapters.py's bare stand-in (which has no __getattr__): ours.
            sys.modules[name] = _stand_in_module(name)
    for name in _STAND_IN_MODULES:
        if "." in name:
            parent, child = name.rsplit(".", 1)
            if not hasattr(sys.modules[parent], "__file__"):  # never alter an installed package
                setattr(sys.modules[parent], child, sys.modules[name])
    tqdm = sys.modules["tqdm"]
    if not hasattr(tqdm, "__file__"):
        tqdm.tqdm = lambda it=None, *a, **k: it
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self


def _import_from(code_dir, *names):
    """`names` imported from the checkout folder `code_dir` (its own modules, not another's)."""
    for n in _REPO_MODULES:
        sys.modules.pop(n, None)
    while _on_path:
        d = _on_path.pop()
        if d in sys.path:
            sys.path.remove(d)
    sys.path.insert(0, code_dir)
    _on_path.append(code_dir)
    importlib.invalidate_caches()
    return [importlib.import_module(n) for n in names]


class Samples(torch.utils.data.Dataset, collections.abc.Sequence):
    """Samples as the repositories' datasets give them, (x, torch.Tensor([]), y) with y an int, in
    a given order; `refs` are (camu-pipe ImageSet, position) pairs, prepared when read."""

    def __init__(self, refs):
        self.refs = list(refs)

    def __len__(self):
        return len(self.refs)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        s, pos = self.refs[k]
        x, y = s[pos]
        return x, torch.Tensor([]), int(y)

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]


class _Data:
    """The split's parts: camu-pipe's datasets, labels and indices, and light stand-ins for
    samples ((part, position), torch.Tensor([]), label) that the repositories' list-building
    functions can sort without preparing images."""

    def __init__(self, ctx):
        self.sets = {p: ctx.dataset(p) for p in ("forget", "remain", "test")}
        self.index = {p: ctx.indices(p).tolist() for p in self.sets}
        self.labels = {p: (ctx.data.test_y if p == "test" else ctx.data.train_y)[ctx.indices(p)].tolist()
                       for p in self.sets}

    def light(self, *parts):
        """The parts' samples as light triples, in dataset order."""
        items = [(self.index[p][k], ((p, k), torch.Tensor([]), y)) for p in parts for k, y in enumerate(self.labels[p])]
        return [t for _, t in sorted(items, key=lambda it: it[0])]

    def samples(self, light):
        return Samples((self.sets[p], k) for (p, k), _, _ in light)

    def part(self, p):
        """A part in the split's order."""
        return Samples((self.sets[p], k) for k in range(len(self.labels[p])))


def scenario_of(ctx):
    """("class", c) or ("random", None): the split's scenario (inferred from the labels when
    split.json does not say), checked against the forget set."""
    fy, ry = ctx.data.train_y[ctx.indices("forget")].tolist(), set(ctx.data.train_y[ctx.indices("remain")].tolist())
    scen = getattr(ctx.split, "scenario", None)
    if scen is None:
        scen = "class" if len(set(fy)) == 1 and fy[0] not in ry else "random"
    if scen == "random":
        return "random", None
    if scen != "class":
        raise ValueError(f"scenario `{scen}`: the references cover full-class and random removal only")
    classes = list(getattr(ctx.split, "classes", None) or sorted(set(fy)))
    if len(classes) != 1:
        raise ValueError(f"class removal of {classes}: the references remove one class")
    c = int(classes[0])
    if set(fy) != {c} or c in ry:
        raise ValueError(f"the split's forget set is not the whole of class {c}")
    return "class", c


def _incompetent(model, device):
    """A randomly initialised model of the original's architecture."""
    from camu_pipe import models as cmodels

    spec = model.spec
    m = cmodels.build(spec["arch"], spec["channels"], spec["classes"])
    return m.to(device)


def _stub_evaluation(strategies, unlearn_module):
    nan = float("nan")
    strategies.get_metric_scores = lambda *a, **k: (nan, nan, nan, nan, nan)

    def evaluate(model, val_loader, device):
        model.eval()
        return {"Loss": nan, "Acc": nan}

    unlearn_module.evaluate = evaluate


def _seed():
    seed = torch.initial_seed()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    return seed


def _ssd_repo_kwargs(ctx, data, scenario, forget_class, fcs, net, device):
    """The keyword arguments forget_full_class_main.py / forget_random_main.py pass to a strategy,
    built the same way over camu-pipe's samples."""
    k = ctx.classes
    if scenario == "class":
        batch_size = 64  # forget_full_class_main.py: `-b` default
        classwise_train = fcs.get_classwise_ds(data.light("remain", "forget"), k)
        classwise_test = fcs.get_classwise_ds(data.light("test"), k)
        retain_train, retain_valid, forget_train, forget_valid = fcs.build_retain_forget_sets(
            classwise_train, classwise_test, k, forget_class)
        if {p for (p, _), _, _ in forget_train} != {"forget"} or len(forget_train) != len(data.labels["forget"]):
            raise ValueError("build_retain_forget_sets' Df is not the split's forget set")
        retain_train, retain_valid, forget_train, forget_valid = map(
            data.samples, (retain_train, retain_valid, forget_train, forget_valid))
        validloader = DataLoader(data.part("test"), num_workers=0, batch_size=batch_size, shuffle=False)
        forget_valid_dl = DataLoader(forget_valid, batch_size)
        retain_valid_dl = DataLoader(retain_valid, batch_size)
        forget_train_dl = DataLoader(forget_train, batch_size)
        retain_train_dl = DataLoader(retain_train, batch_size, shuffle=True)
        full_train_dl = DataLoader(ConcatDataset((retain_train_dl.dataset, forget_train_dl.dataset)),
                                   batch_size=batch_size)
        extra = {"forget_class": forget_class}
        loaders = {"batch_size": batch_size, "forget_batch_size": batch_size, "retained_order": "by class"}
    else:
        batch_size = 128  # forget_random_main.py: `-b` default
        validloader = DataLoader(data.part("test"), num_workers=0, batch_size=batch_size, shuffle=False)
        forget_train, retain_train = data.part("forget"), data.part("remain")
        forget_train_dl = DataLoader(forget_train, batch_size=128)
        retain_train_dl = DataLoader(retain_train, batch_size=128, shuffle=True)
        forget_valid_dl = forget_train_dl
        retain_valid_dl = validloader
        full_train_dl = DataLoader(ConcatDataset((retain_train_dl.dataset, forget_train_dl.dataset)),
                                   batch_size=batch_size)
        extra = {}
        loaders = {"batch_size": batch_size, "forget_batch_size": 128, "retained_order": "split order"}
    kwargs = {
        "model": net,
        "unlearning_teacher": adapters.Logits(_incompetent(net.net, device)),
        "retain_train_dl": retain_train_dl,
        "retain_valid_dl": retain_valid_dl,
        "forget_train_dl": forget_train_dl,
        "forget_valid_dl": forget_valid_dl,
        "full_train_dl": full_train_dl,
        "valid_dl": validloader,
        "dampening_constant": 1,
        "selection_weighting": 10 * 1,  # model_size_scaler 1 (not ViT)
        **extra,
        "num_classes": k,
        "dataset_name": ctx.data.meta.get("name", "camu-pipe"),
        "device": device,
        "model_name": ctx.arch,
    }
    return kwargs, loaders


def run(method, ctx, model, refs, work):
    """Runs the reference's function for `method` on `model` (changed in place for ssd and
    amnesiac, as the references do; bad_teacher trains a copy); returns the unlearned model
    (logits-only wrapper) and the settings used."""
    repo = METHODS[method]
    root = os.path.join(refs, repo)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: check out {repo} there")
    install_stand_ins()
    device = str(getattr(ctx, "device", "cpu"))
    scenario, forget_class = scenario_of(ctx)
    seed = _seed()
    data = _Data(ctx)
    common = {"repository": repo, "commit": adapters.commit_of(root), "scenario": scenario,
              "python_random_seed": seed}
    if scenario == "class":
        common["forget_class"] = forget_class

    if method in ("ssd", "amnesiac"):
        code = os.path.join(root, "src")
        fcs, frs, unlearn = _import_from(code, "forget_full_class_strategies", "forget_random_strategies", "unlearn")
        _stub_evaluation(fcs, unlearn)
        _stub_evaluation(frs, unlearn)
        net = adapters.Logits(model).to(device)
        kwargs, loaders = _ssd_repo_kwargs(ctx, data, scenario, forget_class, fcs, net, device)
        if method == "ssd":
            # forget_random_strategies.ssd_tuning raises UnboundLocalError (see the docstring).
            fcs.ssd_tuning(**kwargs)
            return net, {
                **common,
                "function": "src/forget_full_class_strategies.py: ssd_tuning (src/ssd.py: ParameterPerturber."
                            "calc_importance on forget_train_dl, then full_train_dl; modify_weight)",
                "alpha": kwargs["selection_weighting"], "lambda": kwargs["dampening_constant"],
                "lower_bound": 1, "exponent": 1, **loaders,
                "full_train": "ConcatDataset(Dr, Df), unshuffled", "mode": "eval",
            }
        strategies = fcs if scenario == "class" else frs
        strategies.amnesiac(**kwargs)
        relabel = ("random.choice of the classes other than forget_class" if scenario == "class"
                   else "random.choice of the classes, redrawn while equal to the sample's label")
        n_f, n_r = len(kwargs["forget_train_dl"].dataset), len(kwargs["retain_train_dl"].dataset)
        return net, {
            **common,
            "function": f"src/{strategies.__name__}.py: amnesiac (src/unlearn.py: fit_one_unlearning_cycle)",
            "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "epochs": 3, "batch_size": 128,
            "shuffle": True, "remain_fraction": 1.0, "relabel": relabel, "forget_samples": n_f,
            "remain_samples": n_r, "mode": "train",
        }

    if method == "bad_teacher":
        (bt,) = _import_from(root, "unlearn")
        teacher = adapters.Logits(model).to(device).eval()
        student = adapters.Logits(copy.deepcopy(model)).to(device).train()
        bad = adapters.Logits(_incompetent(model, device)).eval()
        if scenario == "class":
            # The notebook's cell 6: Df and Dr class by class, each in dataset order.
            light = data.light("remain", "forget")
            forget_train = data.samples([t for t in light if t[2] == forget_class])
            retain_train = data.samples(sorted((t for t in light if t[2] != forget_class), key=lambda t: t[2]))
        else:
            forget_train, retain_train = data.part("forget"), data.part("remain")
        retain_train_subset = random.sample(retain_train, int(0.3 * len(retain_train)))
        KL_temperature = 1
        optimizer = torch.optim.Adam(student.parameters(), lr=0.0001)
        bt.blindspot_unlearner(model=student, unlearning_teacher=bad, full_trained_teacher=teacher,
                               retain_data=retain_train_subset, forget_data=forget_train, epochs=1,
                               optimizer=optimizer, lr=0.0001, batch_size=256, num_workers=0, device=device,
                               KL_temperature=KL_temperature)
        return student, {
            **common,
            "function": "unlearn.py: blindspot_unlearner (unlearning_step, UnlearnerLoss; dataset.py: UnLearningData)",
            "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "epochs": 1, "batch_size": 256,
            "temperature": KL_temperature, "remain_fraction": 0.3, "remain_subset": len(retain_train_subset),
            "forget_samples": len(forget_train), "shuffle": True, "num_workers": 0,
            "student_mode": "train", "teachers_mode": "eval",
            "incompetent_teacher": "camu_pipe.models.build of the original's spec"
                                   + (" with torchvision's ResNet init" if ctx.arch.startswith("resnet") else ""),
        }

    raise ValueError(f"unknown method `{method}` (known: {', '.join(sorted(METHODS))})")
