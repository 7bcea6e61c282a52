"""camu-pipe's datasets and splits in PyTorch, prepared exactly as camu-worker prepares them.

A `download` stage writes dataset.safetensors (u8 images N x C x H x W, i64 labels) and
dataset.json; a `split` stage writes split.json (indices of Df, Dr, Ds and the validation part).
`prepare` is `camu_torch::models::prepare`: pixels / 255; CIFAR inputs normalised with ImageNet's
channel statistics, resized to 224x224 for the ImageNet-stem ResNet-18, and augmented where asked
(random-resized crop and flip for `resnet18`, a 4-pixel padded random crop and flip for the
others).
"""

import json
import math
import os

import torch
import torch.nn.functional as F

# ImageNet channel statistics, which the reference normalises CIFAR inputs with.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

#: The index sets a split defines, with their aliases.
PARTS = {
    "all": "all", "D": "all",
    "forget": "forget", "Df": "forget",
    "remain": "remain", "Dr": "remain",
    "sample": "sample", "Ds": "sample",
    "test": "test",
    "validation": "validation",
}


class Dataset:
    """A decoded dataset: u8 images and i64 labels of the training and test sets, and its meta
    (name, family, classes, channels, height, width, n_train, n_test)."""

    def __init__(self, directory):
        from safetensors.torch import load_file

        with open(os.path.join(directory, "dataset.json")) as f:
            self.meta = json.load(f)
        t = load_file(os.path.join(directory, "dataset.safetensors"))
        self.train_x, self.train_y = t["train_x"], t["train_y"]
        self.test_x, self.test_y = t["test_x"], t["test_y"]
        self.family = self.meta["family"]
        self.classes = int(self.meta["classes"])


class Split:
    """Df, Dr, Ds (indices into the training set) and the validation part of the test set."""

    def __init__(self, path):
        with open(path) as f:
            self.raw = json.load(f)
        self.forget = self.raw["forget"]
        self.remain = self.raw["remain"]
        self.sample = self.raw["sample"]
        self.forget_repeat = self.raw.get("forget_repeat", 1)
        self.validation = self.raw.get("validation")
        self.seed = self.raw.get("seed")
        #: `random`, `class` or `per_class`, with its `fraction`, `classes` or `proportions`.
        self.scenario = self.raw.get("scenario")
        self.fraction = self.raw.get("fraction")
        self.classes = self.raw.get("classes")
        self.proportions = self.raw.get("proportions")

    def test_indices(self, n_test):
        """The test samples evaluations report on: the test set without the validation part."""
        if self.validation is None:
            return list(range(n_test))
        held = set(self.validation)
        return [i for i in range(n_test) if i not in held]


def prepare(x, family, arch, augment=False, device="cpu"):
    """A u8 batch (N, C, H, W) as the model's float input on `device`."""
    x = x.to(device).to(torch.float32) / 255.0
    if family == "mnist":
        return x
    if arch == "resnet18":
        x = random_resized_crop(x, 224) if augment else F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    elif augment:
        x = random_crop_flip(x, 4)
    mean = torch.tensor(MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _flip_some(x):
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(mask, x.flip(3), x)


def random_crop_flip(x, pad):
    """Pads by `pad` pixels, takes a random crop of the original size, flips half the batch."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offs = torch.randint(2 * pad + 1, (n, 2)).tolist()
    crops = [padded[i, :, t:t + h, l:l + w] for i, (t, l) in enumerate(offs)]
    return _flip_some(torch.stack(crops))


def random_resized_crop(x, size):
    """torchvision's RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3), then a horizontal flip."""
    n, _, h, w = x.shape
    area = float(h * w)
    out = []
    for i in range(n):
        crop = (h, w, 0, 0)
        for _ in range(10):
            target = area * (0.08 + torch.rand(()).item() * 0.92)
            ratio = math.exp(math.log(0.75) + torch.rand(()).item() * (math.log(4 / 3) - math.log(0.75)))
            cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                top = min(int(torch.rand(()).item() * (h - ch + 1)), h - ch)
                left = min(int(torch.rand(()).item() * (w - cw + 1)), w - cw)
                crop = (ch, cw, top, left)
                break
        ch, cw, top, left = crop
        patch = x[i:i + 1, :, top:top + ch, left:left + cw]
        out.append(F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False))
    return _flip_some(torch.cat(out))


class ImageSet(torch.utils.data.Dataset):
    """Samples of one part of a split as a map-style torch dataset of (x, y) pairs, prepared on the
    CPU (for `torch.utils.data.DataLoader`); `Loader` is the faster batch iterator."""

    def __init__(self, images, labels, indices, family, arch, augment=False):
        self.images, self.labels = images, labels
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.family, self.arch, self.augment = family, arch, augment

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        x = prepare(self.images[i:i + 1], self.family, self.arch, self.augment)[0]
        return x, self.labels[i]


class Loader:
    """Batches of one part of a split, prepared on the device as camu-worker prepares them: a
    fresh shuffle each epoch (torch's global generator, seeded from the stage's seed) when
    `shuffle`, the last batch possibly smaller unless `drop_last`. Yields (x, y), or
    (x, y, indices) with `indices=True`. `labels` replaces the dataset's labels (a tensor over
    the whole training or test set)."""

    def __init__(self, images, labels, indices, family, arch, batch_size, shuffle=False, augment=False,
                 device="cpu", drop_last=False, with_indices=False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        # The u8 set goes to the device once (a GPU step on a small model is launch-bound: a
        # gather and copy on the host per batch made a 3-epoch finetune 4x slower on an H200).
        # Shuffles still come from the CPU generator, so the batches are the same on every device.
        self.images, self.labels = images.to(device), labels.to(device)
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self._device_indices = self.indices.to(device)
        self.family, self.arch, self.augment, self.device = family, arch, augment, device
        self.batch_size, self.shuffle, self.drop_last, self.with_indices = batch_size, shuffle, drop_last, with_indices

    def __len__(self):
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        idx, on_device = self.indices, self._device_indices
        if self.shuffle:
            perm = torch.randperm(len(idx))
            idx, on_device = idx[perm], on_device[perm.to(on_device.device)]
        for k in range(len(self)):
            part = slice(k * self.batch_size, (k + 1) * self.batch_size)
            b = on_device[part]
            x = prepare(self.images.index_select(0, b), self.family, self.arch, self.augment, self.device)
            y = self.labels.index_select(0, b)
            yield (x, y, idx[part]) if self.with_indices else (x, y)
