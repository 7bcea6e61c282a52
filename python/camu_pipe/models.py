"""camu-pipe's architectures as PyTorch modules, with the parameter names camu-worker writes.

Each forward returns (logits, embedding), as the Rust models do (crates/torch/src/models/mod.rs):
the embedding is fc1's output for the CNN and the 512-d pooled feature for both ResNets. Weights
are loaded from and saved to the `model.safetensors` + `model.json` pair every stage writes.
"""

import json
import os

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("cnn", "resnet18", "resnet18_cifar")


class Cnn(nn.Module):
    """The reference CNN: conv(5x5, 16) ReLU max-pool, conv(5x5, 32) ReLU max-pool, fc1 (the
    embedding, 256), fc2 (128) and fc3 (classes), with no activation between the linear layers."""

    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc1 = nn.Linear(32 * 7 * 7, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        emb = self.fc1(torch.flatten(h, 1))
        return self.fc3(self.fc2(emb)), emb

    def head(self):
        return self.fc3


class Block(nn.Module):
    """torchvision's BasicBlock."""

    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.downsample = None
        if stride != 1 or i != o:
            self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, 0, bias=False), nn.BatchNorm2d(o))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(y + skip)


class ResNet18(nn.Module):
    """ResNet-18 with the ImageNet stem (7x7 stride 2, max-pool; 224x224 inputs) or, with
    `imagenet_stem=False`, a 3x3 stride-1 stem without max-pool (32x32 inputs)."""

    def __init__(self, channels=3, classes=10, imagenet_stem=True):
        super().__init__()
        self.imagenet_stem = imagenet_stem
        if imagenet_stem:
            self.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        i = 64
        for n, (o, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            setattr(self, f"layer{n + 1}", nn.Sequential(Block(i, o, stride), Block(o, o, 1)))
            i = o
        self.fc = nn.Linear(512, classes)
        # torchvision's (and camu-pipe's Rust model's) conv init: Kaiming normal, fan-out, ReLU.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet_stem:
            h = F.max_pool2d(h, 3, 2, 1)
        for n in range(1, 5):
            h = getattr(self, f"layer{n}")(h)
        emb = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        return self.fc(emb), emb

    def head(self):
        return self.fc


def build(arch, channels, classes):
    """A freshly initialised model: PyTorch's default initialisation, and torchvision's for the
    ResNets' convolutions."""
    if arch == "cnn":
        m = Cnn(channels, classes)
    elif arch in ("resnet18", "resnet18_cifar"):
        m = ResNet18(channels, classes, imagenet_stem=arch == "resnet18")
    else:
        raise ValueError(f"unknown arch `{arch}` (known: {', '.join(ARCHS)})")
    m.spec = {"arch": arch, "classes": int(classes), "channels": int(channels)}
    return m


def _state(model):
    """The tensors camu-worker stores: parameters and batch-norm running statistics (PyTorch's
    `num_batches_tracked` has no counterpart there)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _check(state, want, arch, where):
    """`state` holds exactly the tensors `want` (a model's state) holds, with their shapes."""
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        raise ValueError(f"{where}: not a {arch} model (missing {missing[:5]}, unexpected {extra[:5]})")
    for k, t in state.items():
        if tuple(t.shape) != tuple(want[k].shape):
            raise ValueError(f"{where}: `{k}` has shape {tuple(t.shape)}, expected {tuple(want[k].shape)}")


def load(directory, device="cpu"):
    """The model in `directory` (its model.json and model.safetensors), on `device`."""
    from safetensors.torch import load_file

    with open(os.path.join(directory, "model.json")) as f:
        spec = json.load(f)
    model = build(spec["arch"], spec["channels"], spec["classes"])
    path = os.path.join(directory, "model.safetensors")
    tensors = load_file(path)
    # Built once: each build draws its initial weights from torch's generator, and methods'
    # random draws follow (finetune_torch reproduces camu-worker's shuffles because of it).
    _check(tensors, _state(model), spec["arch"], path)
    model.load_state_dict(tensors, strict=False)
    return model.to(device)


def save(model, directory):
    """Writes model.safetensors and model.json into `directory`, as camu-worker does."""
    from safetensors.torch import save_file

    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("the model was not built by camu_pipe (it has no `spec`); start from ctx.original_model()")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in _state(model).items()}
    # What camu-worker can load back: e.g. pruning's `weight_orig`/`weight_mask` cannot be. The
    # reference shapes come from the meta device, which draws no random numbers.
    with torch.device("meta"):
        want = _state(build(spec["arch"], spec["channels"], spec["classes"]))
    _check(tensors, want, spec["arch"], "the model to save")
    os.makedirs(directory, exist_ok=True)
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "model.json"), "w") as f:
        json.dump(spec, f, indent=2)
