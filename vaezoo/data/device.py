"""Datasets held on the training device as uint8, and batches sliced from a permutation.

DeviceData (a dataset's splits on one device), check_files (verify the raw files), and
load / read (verify, then read the IDX files, split and binarize).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from vaezoo.core.errors import DataError
from vaezoo.data import acquire
from vaezoo.data.binarize import BINARIZATIONS, Binarization
from vaezoo.data.datasets import DATASETS, DatasetInfo, DataSpec


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

    def train_labels_at(self, index: torch.Tensor) -> torch.Tensor:
        """The labels of the training images at `index`, the same slice `train_batch` takes."""
        return self.train_labels[index]

    @torch.no_grad()
    def pixel_stats(self, seed: int, block: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of every pixel over one pass of the training images as the model sees them
        (one binarized draw each, from its own generator seeded with `seed`), float64, (C, H, W) each."""
        generator = torch.Generator(self.train_images.device).manual_seed(seed)
        total = torch.zeros(self.image_shape, dtype=torch.float64, device=self.train_images.device)
        squares = torch.zeros_like(total)
        for index in torch.arange(self.n_train, device=self.train_images.device).split(block):
            batch = self.train_batch(index, generator).double()
            total += batch.sum(0)
            squares += batch.square().sum(0)
        mean = total / self.n_train
        return mean, (squares / self.n_train - mean.square()).clamp_min(0).sqrt()


@contextlib.contextmanager
def _readable() -> Iterator[None]:
    """An OSError while reading the data (a file without read permission, a path too long) is a DataError."""
    try:
        yield
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        raise DataError(f"cannot read data file{where}: {error.strerror or error}") from None


def check_files(spec: DataSpec) -> DatasetInfo:
    """Verify the dataset's raw files (presence and MD5) without loading them; DataError if not right."""
    info = DATASETS.get(spec.dataset)
    with _readable():
        acquire.verify_files(info.raw_dir(spec.resolved_root()), info.md5, info.name)
    return info


def load(spec: DataSpec, device: torch.device) -> DeviceData:
    """Verify the dataset's files, then read them onto `device` (see read)."""
    return read(check_files(spec), spec, device)


def read(info: DatasetInfo, spec: DataSpec, device: torch.device) -> DeviceData:
    """Read already verified files, split off validation, binarize, move to `device`."""
    root = spec.resolved_root()
    with _readable():
        train_images, labels = info.read_split(root, train=True)
        test_images, test_labels = info.read_split(root, train=False)
    images = train_images.unsqueeze(1)
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
        test_images=binarization.eval_set(test_images.unsqueeze(1).to(device), "test"),
        test_labels=test_labels.to(device),
        image_shape=info.image_shape,
    )
