"""How CaMU's reference repository is called on camu-pipe's inputs (benches/vs-reference).

camu: ShaofeiShen768/CaMU (at 987b41a), its code in `CaMU/`: `prepare.counterfactual_generation`
builds the counterfactual tuples and `remove.causal_effect_removel` runs the removal, called as
`main.py` calls them (main.py:55-66): the repository's own functions, over loaders built as
`dataset.construct_data` and `main.py` build them, on camu-pipe's original model.

The adaptation is the least that lets that code run here, and nothing in its loops:
- the third-party packages its modules import and the removal never uses (torchvision, sklearn,
  xgboost, tqdm, pandas, torchsummary) are stand-ins when they are not installed; any use of
  them raises. `config`, `utils`, `train`, `prepare` and `remove` are the checkout's own;
- `.cuda()` on tensors and modules is the identity (everything runs on the CPU, where
  camu-pipe's evaluation reads the model);
- `config`'s settings are set on the imported module (the reference is configured by editing
  config.py, whose active branch is CIFAR-10 class removal): IMPAIR_EPOCHS, IMPAIR_LR, KL_LR from
  config.py's branch for the dataset family and scenario (for Fashion-MNIST / MNIST the
  commented-out branches at config.py:2-9, random, and config.py:11-18, class; camu-pipe's
  documented defaults, docs/methods.md "camu", are these), CLASS_COUNT = the dataset's classes;
- the model is camu-pipe's own: its forward already returns (logits, embedding) with the
  reference's embedding (fc1's output, no activation, for the CNN: Model.py:44-50 and
  python/camu_pipe/models.py:30-34; the 512-d pooled feature for the ResNets: Model.py:67-70),
  which is all the removal reads from a model (`model(x)[0]`, `model(x)[1]`). CaMU has no
  transformation network or other model-sized module: the intervention is uniform noise added to
  the inputs (prepare.py:40-41), and the one model-specific setting is CLASS_COUNT
  (prepare.py:68). The returned network is the unlearned copy wrapped in `adapters.Logits`;
- loaders as the reference builds them, over camu-pipe's prepared samples (`ctx.dataset`, the
  test-time transform: [0, 1] pixels for the MNIST family, as the reference's ToTensor): Df and
  Ds (the split's `sample` part) batch 32, shuffled (dataset.py:219, 233-236, 245-248), Df
  repeated `forget_repeat` times where the split says so (dataset.py:180-183), and the
  counterfactual loader batch 32, shuffled (main.py:60). `num_workers` is 0 instead of 3 (the
  workers only load; no random transform runs in them);
- the seed: `utils.random_setting` (the reference's own, main.py:35) with the seed torch's
  generator was last seeded with (run.py's --seed / --run-seed), so the shuffles, the noise
  (torch) and the label redraws (Python's `random`) follow it.

unrolling_sgd is not adapted: cleverhans-lab/unrolling-sgd (at 49e001f) has no function that
unlearns a given model. Every file under Unlearning/ (master_unlearning.py, finetune.py,
Correlation_unlearning.py, correlation_verification.py, cumulative_verification.py,
checkpoint_version.py) is a top-level script: importing it parses sys.argv, downloads CIFAR
through torchvision, imports PyHessian, trains its own ResNet/VGG from scratch with SGD, and
performs the single-step unrolling update inline in that training loop (e.g.
cumulative_verification.py:195-211, correlation_verification.py:255-276), on one fixed batch of
CIFAR (`batch_star`), with the weights of the model it trained itself. The only functions it
defines are weight-list helpers, `validate`, `std_loss` and `my_cross_entropy`. Running it on
camu-pipe's model and split would mean rewriting the update, which this harness does not do.
"""

import copy
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types

import torch
import torch.nn as nn

import adapters

REPO = "CaMU"

# method -> the reference repository (a folder of that name under `refs`)
METHODS = {"camu": REPO}

# config.py's branches: (dataset family, scenario) -> (IMPAIR_EPOCHS, IMPAIR_LR, KL_LR, where).
CONFIG = {
    ("mnist", "random"): (10, 0.0005, 0.0004, "config.py:2-9, random data removal for MNIST and Fashion-MNIST"),
    ("mnist", "class"): (2, 0.001, 0.0004, "config.py:11-18, class removal for MNIST and Fashion-MNIST"),
    ("cifar", "random"): (10, 0.0001, 0.00001, "config.py:21-28, random data removal for CIFAR10 and CIFAR100"),
    ("cifar", "class"): (2, 0.00005, 0.00001, "config.py:31-38, class removal for CIFAR10 and CIFAR100"),
}
BATCH_SIZE = 32  # dataset.py:219 construct_data(batch_size = 32); main.py:60

# Third-party modules the reference's files import (remove.py, train.py, prepare.py, Model.py,
# dataset.py), with the names they take from them.
THIRD_PARTY = {
    "torchvision": ("transforms", "datasets", "models"),
    "torchvision.transforms": ("ToTensor", "Compose", "Resize", "RandomResizedCrop", "RandomHorizontalFlip",
                               "CenterCrop", "Normalize"),
    "torchvision.datasets": ("FashionMNIST", "MNIST", "CIFAR10"),
    "torchvision.models": ("resnet18",),
    "sklearn": ("metrics", "model_selection", "linear_model"),
    "sklearn.metrics": ("confusion_matrix", "classification_report", "accuracy_score", "precision_score",
                        "recall_score"),
    "sklearn.model_selection": ("train_test_split",),
    "sklearn.linear_model": (),
    "xgboost": ("XGBClassifier",),
    "tqdm": ("tqdm",),
    "pandas": (),
    "torchsummary": ("summary",),
}
# The reference's own modules (CaMU/*.py), imported by these names.
OWN = ("config", "utils", "train", "prepare", "remove", "Model", "dataset")


def _stub(name):
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__camu_stand_in__ = True

    def missing(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return adapters._unused(f"{name}.{attr}")

    mod.__getattr__ = missing
    return mod


def install_stand_ins():
    """Stand-ins for the third-party packages that are not installed (a package that is installed
    is the real one), and `.cuda()` as the identity."""
    for name, attrs in THIRD_PARTY.items():
        top = name.split(".")[0]
        present = sys.modules.get(top)
        if present is None and importlib.util.find_spec(top) is not None:
            continue  # installed: the reference imports the real package
        if present is not None and not getattr(present, "__camu_stand_in__", False):
            continue
        mod = sys.modules.get(name)
        if mod is None:
            mod = sys.modules[name] = _stub(name)
        for a in attrs:
            if f"{name}.{a}" not in THIRD_PARTY:
                setattr(mod, a, adapters._unused(f"{name}.{a}"))
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(sys.modules[parent], child, mod)
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self


def load_reference(code):
    """The checkout's `config`, `utils`, `prepare` and `remove` (and `train`, which `remove`
    imports), fresh, without writing bytecode into the checkout."""
    for name in OWN:
        sys.modules.pop(name, None)
    sys.path.insert(0, code)
    quiet = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return {name: importlib.import_module(name) for name in ("config", "utils", "prepare", "remove")}
    finally:
        sys.dont_write_bytecode = quiet
        sys.path.remove(code)


def run(method, ctx, model, refs, work):
    """Runs CaMU's reference removal on a copy of `model`; returns the unlearned model (logits-only
    wrapper) and the settings used."""
    if method not in METHODS:
        raise ValueError(f"no CaMU adapter for `{method}` (known: {sorted(METHODS)})")
    root = os.path.join(refs, REPO)
    code = os.path.join(root, "CaMU")
    install_stand_ins()
    ref = load_reference(code)
    cf, utils, prepare, remove = ref["config"], ref["utils"], ref["prepare"], ref["remove"]

    family = "cifar" if ctx.family == "cifar" else "mnist"
    scenario = "random" if ctx.split.scenario == "random" else "class"  # per_class: config's class branch
    epochs, impair_lr, kl_lr, branch = CONFIG[(family, scenario)]
    name = str(ctx.data.meta.get("name", ""))
    if family == "mnist":
        dataset = "Fashion" if "fashion" in name else "Digit"
    else:
        dataset = "CIFAR100" if ctx.classes == 100 else "CIFAR10"
    # config.py's names, read by remove.py and prepare.py at call time (`cf.X`).
    cf.DATASET, cf.DATATYPE, cf.CLASS_COUNT = dataset, scenario, ctx.classes
    cf.IMPAIR_EPOCHS, cf.IMPAIR_LR, cf.KL_LR = epochs, impair_lr, kl_lr

    # main.py:35: seeds random, numpy and torch. The seed is the one run.py gave torch.
    seed = torch.initial_seed() % 2**32
    utils.random_setting(seed)

    # dataset.py:227-249 (construct_data): 'unlearn' (Df) and 'sample' (Ds), batch 32, shuffled.
    forget = ctx.dataset("forget")
    repeat = int(getattr(ctx.split, "forget_repeat", 1) or 1)
    if repeat > 1:  # dataset.py:180-183 (the reference's CIFAR-100 class removal)
        forget = torch.utils.data.ConcatDataset([forget for _ in range(repeat)])
    sample = ctx.dataset("sample")
    if len(sample) < len(forget):
        raise ValueError(f"|Ds| = {len(sample)} < |Df| = {len(forget)}: the reference pairs every Df item with a "
                         "Ds item (prepare.py:27, 65-68) and fails on this split")
    loaders = {
        "unlearn": torch.utils.data.DataLoader(forget, batch_size=BATCH_SIZE, shuffle=True),
        "sample": torch.utils.data.DataLoader(sample, batch_size=BATCH_SIZE, shuffle=True),
    }

    # main.py:55-66, in order.
    trained_model = model
    new_model = copy.deepcopy(trained_model)  # main.py:55
    close_dataset = prepare.counterfactual_generation(trained_model, loaders["unlearn"], loaders["sample"])
    close_loader = torch.utils.data.DataLoader(close_dataset, batch_size=BATCH_SIZE, shuffle=True)  # main.py:60
    remove.causal_effect_removel(trained_model, new_model, close_loader, loaders["sample"])  # main.py:66

    settings = {
        "repository": f"ShaofeiShen768/{REPO}",
        "commit": adapters.commit_of(root),
        "function": "CaMU/prepare.py: counterfactual_generation, then CaMU/remove.py: causal_effect_removel",
        "config_branch": branch,
        "DATASET": dataset,
        "DATATYPE": scenario,
        "CLASS_COUNT": ctx.classes,
        "impair_epochs": epochs,  # config.py IMPAIR_EPOCHS
        "impair_lr": impair_lr,  # config.py IMPAIR_LR
        "kl_lr": kl_lr,  # config.py KL_LR
        "weight_decay": 1e-4,  # remove.py:22-23, both Adam optimizers (fixed in the code)
        "batch_size": BATCH_SIZE,  # dataset.py:219, main.py:60
        "shuffle": True,  # dataset.py:236, 248; main.py:60
        "kl_weight_remain": 0.5,  # remove.py:61 (fixed in the code)
        "kl_weight_forget": 0.5,  # remove.py:61
        "ce_weight_remain": 0.9,  # remove.py:71
        "ce_weight_forget": 0.01,  # remove.py:71
        "noise": "uniform [0, 1) per pixel on Ds's inputs",  # prepare.py:40-41
        "forget_repeat": repeat,
        "pairs": len(close_dataset),
        "seed": seed,
    }
    return adapters.Logits(new_model), settings
