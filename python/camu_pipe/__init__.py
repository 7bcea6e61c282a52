"""camu-pipe for PyTorch: the models, data and stage context that camu-pipe's built-in methods
use, for unlearning methods written in PyTorch and for notebooks that read camu-pipe's cache.

In a method (`with: {method: {python: methods/my_method.py}}` on an `unlearn` stage), camu-pipe
calls the script's `unlearn(ctx)` with a `camu_pipe.stage.Context`. In a notebook:

    import camu_pipe
    model = camu_pipe.load_model("pipelines/quickstart.yaml", "camu@scenario=class")
    logits, embedding = model(x)
"""

import os
import subprocess

__version__ = "0.1.0"


def load_model(where, stage=None, device="cpu", camu_pipe="camu-pipe"):
    """A model from camu-pipe's cache as an `nn.Module` whose forward returns (logits, embedding).

    `where` is a directory holding model.safetensors and model.json (a stage's output directory),
    or, with `stage`, a pipeline file: then `camu-pipe path PIPELINE STAGE` says where that stage's
    current result lives (set CAMU_CACHE_DIR as for the run)."""
    from . import models

    if stage is not None:
        out = subprocess.run([camu_pipe, "path", str(where), stage], capture_output=True, text=True)
        if out.returncode != 0:
            raise FileNotFoundError(out.stderr.strip() or f"camu-pipe path {where} {stage} failed")
        where = out.stdout.strip()
    if os.path.isfile(where):
        where = os.path.dirname(where)
    return models.load(where, device)


def load_dataset(directory):
    """A `download` stage's dataset (u8 images, labels, meta)."""
    from .data import Dataset

    return Dataset(directory)


def load_split(path):
    """A `split` stage's split.json (or its directory)."""
    from .data import Split

    if os.path.isdir(path):
        path = os.path.join(path, "split.json")
    return Split(path)
