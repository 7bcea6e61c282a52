"""Runs an unlearning method written in PyTorch inside an `unlearn` stage.

camu-worker starts `python -m camu_pipe.stage CONTEXT.json` with this package first on the path.
The context names the stage's inputs (dataset, split, original model), its parameters, seed,
device, threads and output directory. This module loads the data and the original model, imports
the method's script, calls its `unlearn(ctx)` and times that call alone (what `unlearn_time_s`
measures for built-in methods), then writes the returned model for `evaluate` and the run's facts
to `result.json` beside the context. Failures are written to `error.json` with their cause.
"""

import json
import os
import sys
import time
import traceback

# Exit codes by cause; the cause itself goes to error.json, which camu-worker reports.
EXIT_TORCH = 3
EXIT_SCRIPT = 4
EXIT_RAISED = 5
EXIT_NO_MODEL = 6
EXIT_INPUT = 7
EXIT_SAVE = 8

MIN_TORCH = (2, 1)


class StageFailure(Exception):
    def __init__(self, code, cause, detail=""):
        super().__init__(cause)
        self.code, self.cause, self.detail = code, cause, detail


class _Tracked(dict):
    """The parameters, remembering which ones the method read."""

    def __init__(self, d):
        super().__init__(d)
        self.read = set()

    def __getitem__(self, k):
        self.read.add(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        self.read.add(k)
        return super().get(k, default)

    def __contains__(self, k):
        self.read.add(k)
        return super().__contains__(k)


class Context:
    """What a method receives: the stage's parameters, seed, device and threads, the data of its
    split as loaders, and the original model."""

    def __init__(self, spec, data, split, device):
        from . import models

        self.stage = spec["stage"]
        self.params = _Tracked(spec["params"])
        self.seed = int(spec["seed"])
        self.device = device
        self.threads = int(spec["threads"])
        self.gpus = list(spec.get("gpus") or [])
        self.gpu_share = spec.get("gpu_share")
        self.out_dir = spec["out_dir"]
        self.data = data
        self.split = split
        self.family = data.family
        self.classes = data.classes
        self.original_record = spec.get("original_record") or {}
        # On the device before the clock starts, as the built-in methods load it.
        self._original = models.load(spec["original"], device)
        self.arch = self._original.spec["arch"]
        self.hyperparameters = {}
        self.details = {}
        self.saved = None
        self.saved_at = None

    def param(self, name, default):
        """The stage's `with.NAME`, or `default`; the value used is recorded as a hyperparameter.
        A number given where the default is a float becomes a float."""
        value = self.params.get(name, default)

        def number(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if number(default):
            if not number(value):
                raise ValueError(f"parameter `{name}` must be a number, got {value!r}")
            if isinstance(default, float):
                value = float(value)
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
        self.hyperparameters[name] = value
        return value

    def original_model(self):
        """A fresh copy of the original model f_o on the stage's device, in eval mode."""
        import copy

        m = copy.deepcopy(self._original)
        m.spec = dict(self._original.spec)
        return m.eval()

    def indices(self, part):
        """The indices of a part of the split: `all` (D), `forget` (Df), `remain` (Dr), `sample`
        (Ds) index the training set; `test` (the test set without the validation part) and
        `validation` index the test set."""
        import torch

        from .data import PARTS

        name = PARTS.get(part)
        if name is None:
            raise ValueError(f"unknown part `{part}` (known: {', '.join(sorted(PARTS))})")
        if name == "all":
            v = list(range(len(self.data.train_y)))
        elif name == "test":
            v = self.split.test_indices(len(self.data.test_y))
        elif name == "validation":
            if self.split.validation is None:
                raise ValueError("the split has no validation part (`validation: FRACTION` on the split stage)")
            v = self.split.validation
        else:
            v = getattr(self.split, name)
        return torch.as_tensor(v, dtype=torch.int64)

    def _images(self, part):
        from .data import PARTS

        if PARTS.get(part) in ("test", "validation"):
            return self.data.test_x, self.data.test_y
        return self.data.train_x, self.data.train_y

    def loader(self, part, batch_size, shuffle=True, augment=False, labels=None, drop_last=False, with_indices=False):
        """Prepared batches (x, y) of a part on the stage's device (see `data.Loader`)."""
        from .data import Loader

        x, y = self._images(part)
        return Loader(x, y if labels is None else labels, self.indices(part), self.family, self.arch, batch_size,
                      shuffle=shuffle, augment=augment, device=self.device, drop_last=drop_last,
                      with_indices=with_indices)

    def dataset(self, part, augment=False):
        """A part as a map-style torch dataset of prepared (x, y) samples on the CPU."""
        from .data import ImageSet

        x, y = self._images(part)
        return ImageSet(x, y, self.indices(part), self.family, self.arch, augment=augment)

    def prepare(self, images, augment=False):
        """u8 images as the model's input on the stage's device."""
        from .data import prepare

        return prepare(images, self.family, self.arch, augment, self.device)

    def record(self, **facts):
        """Facts for the stage's record (metrics.json), beside the hyperparameters: numbers,
        strings, booleans, lists and dicts of them (a tensor: `.item()` or `.tolist()` first)."""
        for k, v in facts.items():
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise TypeError(f"ctx.record({k}=...): {e}; record plain numbers, strings or lists") from None
        self.details.update(facts)

    def log(self, *args):
        print(*args, file=sys.stderr, flush=True)

    def save(self, model):
        """Keeps `model` as the stage's result (also what returning it from `unlearn` does); the
        method's time stops at the first save."""
        if self.saved_at is None:
            if str(self.device).startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            self.saved_at = time.perf_counter()
        self.saved = model


def _check_torch():
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means the same to the user
        raise StageFailure(EXIT_TORCH, f"torch cannot be imported by {sys.executable}: {type(e).__name__}: {e}. "
                           "Install torch there, or point `python:` at an interpreter that has it")
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2] if p.isdigit())
    if version < MIN_TORCH:
        raise StageFailure(EXIT_TORCH, f"torch {torch.__version__} at {sys.executable} is too old: camu_pipe needs "
                           f"torch >= {'.'.join(map(str, MIN_TORCH))}")
    for mod in ("numpy", "safetensors"):
        try:
            __import__(mod)
        except Exception as e:  # noqa: BLE001
            raise StageFailure(EXIT_TORCH, f"{mod} cannot be imported by {sys.executable}: {e}")
    return torch


def _device(torch, asked, spec):
    cpu_only = spec.get("cpu_only")
    if asked == "cpu":
        return "cpu"
    if asked == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if spec.get("gpus"):
            print(f"[camu_pipe] device auto: GPU {','.join(spec['gpus'])} was granted but torch {torch.__version__} "
                  f"sees no CUDA device{' (set-up CPU-only environment)' if cpu_only else ''}; running on the CPU",
                  file=sys.stderr, flush=True)
        return "cpu"
    if asked.startswith("cuda"):
        if not torch.cuda.is_available():
            why = " (this is set-up's CPU-only environment: set `python:` to an interpreter whose torch has CUDA)" if cpu_only else ""
            raise StageFailure(EXIT_INPUT, f"device `{asked}`: no CUDA device is visible to torch {torch.__version__}{why}")
        return asked
    raise StageFailure(EXIT_INPUT, f"unknown device `{asked}` (auto, cpu, cuda, cuda:N)")


def _import_script(path):
    import importlib.util

    if not os.path.isfile(path):
        raise StageFailure(EXIT_SCRIPT, f"script {path} does not exist")
    # Local modules beside the script import as usual.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    name = "camu_method_" + os.path.splitext(os.path.basename(path))[0]
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise StageFailure(EXIT_SCRIPT, f"syntax error in {e.filename}:{e.lineno}: {e.msg}", traceback.format_exc())
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit too: a script that exits has no model
        raise StageFailure(EXIT_SCRIPT, f"importing {path} raised {type(e).__name__}: {e}", traceback.format_exc())
    fn = getattr(module, "unlearn", None)
    if not callable(fn):
        raise StageFailure(EXIT_SCRIPT, f"{path} defines no function `unlearn(ctx)`")
    return fn


def run(spec):
    torch = _check_torch()
    from . import __version__, models
    from .data import Dataset, Split

    torch.set_num_threads(max(1, int(spec["threads"])))
    torch.manual_seed(int(spec["seed"]))
    import random

    import numpy as np

    random.seed(int(spec["seed"]))
    np.random.seed(int(spec["seed"]) % 2**32)
    device = _device(torch, spec.get("device") or "auto", spec)
    if device.startswith("cuda"):
        # CUDA's start-up is not the method's time.
        torch.zeros(1, device=device)
        torch.cuda.synchronize()
    unlearn = _import_script(spec["script"])
    try:
        data = Dataset(spec["dataset"])
        split = Split(spec["split"])
        ctx = Context(spec, data, split, device)
    except Exception as e:  # noqa: BLE001
        raise StageFailure(EXIT_INPUT, f"cannot load the stage's inputs: {type(e).__name__}: {e}", traceback.format_exc())
    print(f"[camu_pipe] method {spec['method']} ({spec['script']}) on {device}, {ctx.threads} thread(s), "
          f"torch {torch.__version__}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        result = unlearn(ctx)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit too
        tb = traceback.format_exc()
        where = traceback.extract_tb(e.__traceback__)[-1]
        raise StageFailure(EXIT_RAISED, f"unlearn() raised {type(e).__name__}: {e} ({where.filename}:{where.lineno})", tb)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    model = result if isinstance(result, torch.nn.Module) else ctx.saved
    if model is None:
        got = "nothing" if result is None else type(result).__name__
        raise StageFailure(EXIT_NO_MODEL, f"unlearn() returned {got} and saved no model: return the unlearned "
                           "model (an nn.Module from ctx.original_model()) or call ctx.save(model)")
    if not isinstance(model, torch.nn.Module) or getattr(model, "spec", None) is None:
        raise StageFailure(EXIT_NO_MODEL, "the result is not a camu_pipe model: start from ctx.original_model()")
    unread = sorted(set(ctx.params) - ctx.params.read)
    if unread:
        # Built-in methods refuse unknown parameters; a script's are known once it has run.
        raise StageFailure(EXIT_INPUT, f"the script never read parameter(s) {', '.join(f'`{k}`' for k in unread)} "
                           "given in `with` (a typo?); read them with ctx.param(NAME, DEFAULT) or remove them")
    secs = (ctx.saved_at if ctx.saved_at is not None and result is None else t1) - t0
    models.save(model, spec["out_dir"])
    return {
        "unlearn_time_s": secs,
        "hyperparameters": ctx.hyperparameters,
        "details": ctx.details,
        "device": str(device),
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "torch_version": torch.__version__,
        "camu_pipe_python": __version__,
    }


def main(argv):
    if len(argv) != 2:
        print("usage: python -m camu_pipe.stage CONTEXT.json", file=sys.stderr)
        return 2
    path = os.path.abspath(argv[1])
    here = os.path.dirname(path)
    with open(path) as f:
        spec = json.load(f)
    # This package is the one built into camu-worker (its directory is the working directory,
    # first on the path); relative paths in the script then resolve against the pipeline's
    # directory.
    if os.path.dirname(os.path.dirname(os.path.abspath(__file__))) != here:
        print(f"[camu_pipe] warning: camu_pipe was imported from {__file__}, not {here}", file=sys.stderr)
    os.chdir(spec.get("workdir") or here)

    def fail(code, cause, detail=""):
        if detail:
            print(detail, file=sys.stderr, flush=True)
        with open(os.path.join(here, "error.json"), "w") as f:
            json.dump({"cause": cause, "code": code}, f)
        return code

    try:
        result = run(spec)
        text = json.dumps(result, indent=2)
    except StageFailure as e:
        return fail(e.code, e.cause, e.detail)
    except Exception as e:  # noqa: BLE001 - saving the model, writing the record
        return fail(EXIT_SAVE, f"{type(e).__name__}: {e}", traceback.format_exc())
    with open(os.path.join(here, "result.json"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
