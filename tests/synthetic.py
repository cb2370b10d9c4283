"""A tiny MNIST-shaped dataset that tests make for themselves: IDX files in torchvision's layout."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from torchvision.datasets import MNIST

from vaezoo.data import DATASETS, DatasetInfo
from vaezoo.data.idx import md5_file, write_idx

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class SyntheticMNIST(MNIST):
    """torchvision's MNIST reader over <root>/SyntheticMNIST/raw; never downloads."""

    mirrors: ClassVar[list[str]] = []


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 'digits': label k is a bright bar in column band k plus grey noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        x[i, 4:24, 2 + 2 * k : 5 + 2 * k] = 230
    return x, labels


def make_files(root: Path, n_train: int = 240, n_test: int = 60) -> Path:
    """Write the four IDX files under root/SyntheticMNIST/raw; returns that folder."""
    raw = root / SyntheticMNIST.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train_x, train_y = images(n_train, seed=1)
    test_x, test_y = images(n_test, seed=2)
    for name, array in zip(FILES, (train_x, train_y, test_x, test_y)):
        write_idx(raw / name, array)
    return raw


def register(root: Path) -> None:
    """Make the files (if needed) and register them as the dataset `synthetic`, checksums included."""
    raw = root / SyntheticMNIST.__name__ / "raw"
    if not all((raw / name).exists() for name in FILES):
        make_files(root)
    if "synthetic" not in DATASETS:
        md5 = {name: md5_file(raw / name) for name in FILES}
        DATASETS.register("synthetic")(DatasetInfo("synthetic", SyntheticMNIST.__name__, md5, _no_fetch))


def _no_fetch(raw_dir: Path, log: object) -> None:
    make_files(raw_dir.parent.parent)
