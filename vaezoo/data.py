"""Datasets held on the training device as uint8, binarization, and batches sliced from a permutation."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator

from vaezoo import acquire
from vaezoo.errors import DataError
from vaezoo.registry import Registry
from vaezoo.schema import StrictModel

# Evaluation images are binarized once with these fixed seeds (whatever the run's seed), so every
# evaluation of every run sees the same binary validation and test sets.
EVAL_SEEDS = {"static-train": 1, "val": 2, "test": 3, "probe": 4}


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives (torchvision's class and folder layout), its checksums and how to fetch it."""

    name: str
    torchvision_class: Callable[..., object]
    md5: dict[str, str]
    fetch: Callable[[Path, Callable[[str], None]], None]
    image_shape: tuple[int, int, int] = (1, 28, 28)
    classes: int = 10

    def raw_dir(self, root: Path) -> Path:
        """torchvision's layout: <root>/<ClassName>/raw."""
        return root / self.torchvision_class.__name__ / "raw"


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def _register_torchvision_datasets() -> None:
    from torchvision.datasets import MNIST, FashionMNIST

    DATASETS.register("mnist")(DatasetInfo("mnist", MNIST, acquire.MNIST_MD5, acquire.fetch_mnist))
    DATASETS.register("fashion-mnist")(
        DatasetInfo("fashion-mnist", FashionMNIST, acquire.FASHION_MNIST_MD5, acquire.fetch_fashion_mnist)
    )


_register_torchvision_datasets()


def default_root() -> Path:
    """$VAEZOO_DATA, else the user's cache folder."""
    if env := os.environ.get("VAEZOO_DATA"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vaezoo" / "data"


class DataSpec(StrictModel):
    dataset: str = Field(default="mnist", description="a registered dataset (see `vaezoo list`)")
    root: str | None = Field(default=None, description="data folder; default $VAEZOO_DATA, else the user cache")
    binarize: Literal["none", "dynamic", "static"] = "dynamic"
    val_size: int = Field(default=10000, ge=0, le=59000, description="last N training images held out")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS.names())}")
        return name

    def resolved_root(self) -> Path:
        return Path(self.root).expanduser() if self.root else default_root()


class Binarization:
    """How grey levels become the data the likelihood sees, for training batches and evaluation sets."""

    def prepare_train(self, images: torch.Tensor) -> torch.Tensor:
        """The uint8 training images to hold on the device."""
        return images

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A float batch in [0, 1] from held uint8 images."""
        return images.float().div_(255)

    def eval_set(self, images: torch.Tensor, split: str) -> torch.Tensor:
        """A whole evaluation split as floats, the same on every call."""
        return images.float().div_(255)


BINARIZATIONS: Registry[type[Binarization]] = Registry("binarization")


def bernoulli_draw(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Bernoulli(v / 255) draw per uint8 pixel v, as floats 0/1.

    P(U < v) = v / 255 exactly for U uniform on {0, ..., 254}; comparing random bytes is about three
    times faster than torch.bernoulli on floats, and this runs for every training batch.
    """
    noise = torch.randint(0, 255, images.shape, dtype=torch.uint8, generator=generator, device=images.device)
    return (noise < images).float()


def _fixed_draw(images: torch.Tensor, seed: int) -> torch.Tensor:
    """One draw with a fixed seed, on the CPU so that every device gets the same binary images."""
    return bernoulli_draw(images.cpu(), torch.Generator().manual_seed(seed)).to(images.device)


@BINARIZATIONS.register("none")
class NoBinarization(Binarization):
    """Grey levels in [0, 1] (the classic BCE setup; Bernoulli numbers are then not likelihoods)."""


@BINARIZATIONS.register("dynamic")
class DynamicBinarization(Binarization):
    """A fresh Bernoulli draw of the grey levels each time a training image is used."""

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return bernoulli_draw(images, generator)

    def eval_set(self, images: torch.Tensor, split: str) -> torch.Tensor:
        return _fixed_draw(images, EVAL_SEEDS[split])


@BINARIZATIONS.register("static")
class StaticBinarization(DynamicBinarization):
    """One draw per training image, made once with a fixed seed."""

    def prepare_train(self, images: torch.Tensor) -> torch.Tensor:
        return (_fixed_draw(images, EVAL_SEEDS["static-train"]) * 255).to(torch.uint8)

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images.float().div_(255)


@dataclass
class DeviceData:
    """A dataset's splits on one device: training images as uint8, evaluation splits as floats."""

    binarization: Binarization
    train_images: torch.Tensor  # (N, C, H, W) uint8
    train_labels: torch.Tensor
    val_images: torch.Tensor  # (V, C, H, W) float, fixed
    val_labels: torch.Tensor
    test_images: torch.Tensor  # (T, C, H, W) float, fixed
    test_labels: torch.Tensor
    image_shape: tuple[int, int, int]

    @property
    def n_train(self) -> int:
        return self.train_images.shape[0]

    def train_batch(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The training images at `index` (a slice of the epoch's permutation), binarized as specified."""
        return self.binarization.train_batch(self.train_images[index], generator)


def check_files(spec: DataSpec) -> DatasetInfo:
    """Verify the dataset's raw files (presence and MD5) without loading them; DataError if not right."""
    info = DATASETS.get(spec.dataset)
    acquire.verify_files(info.raw_dir(spec.resolved_root()), info.md5, info.name)
    return info


def load(spec: DataSpec, device: torch.device) -> DeviceData:
    """Verify the dataset's files, then read them onto `device` (see read)."""
    return read(check_files(spec), spec, device)


def read(info: DatasetInfo, spec: DataSpec, device: torch.device) -> DeviceData:
    """Read already verified files through torchvision, split off validation, binarize, move to `device`."""
    root = str(spec.resolved_root())
    train = info.torchvision_class(root=root, train=True, download=False)
    test = info.torchvision_class(root=root, train=False, download=False)
    images, labels = train.data.unsqueeze(1), train.targets
    n_train = images.shape[0] - spec.val_size
    if n_train < 1:
        raise DataError(f"data.val_size {spec.val_size} leaves no training images out of {images.shape[0]}")
    binarization = BINARIZATIONS.get(spec.binarize)()
    return DeviceData(
        binarization=binarization,
        train_images=binarization.prepare_train(images[:n_train].to(device)),
        train_labels=labels[:n_train].to(device),
        val_images=binarization.eval_set(images[n_train:].to(device), "val"),
        val_labels=labels[n_train:].to(device),
        test_images=binarization.eval_set(test.data.unsqueeze(1).to(device), "test"),
        test_labels=test.targets.to(device),
        image_shape=info.image_shape,
    )
