"""The dataset registry: where each dataset's files live, their checksums and how to fetch them.

DatasetInfo, the DATASETS registry (MNIST and Fashion-MNIST, in torchvision's folder layout and
read as IDX files without torchvision), DataSpec (the ``data`` section of an experiment spec) and
default_root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator

from vaezoo.core.errors import DataError
from vaezoo.core.registry import Registry
from vaezoo.core.schema import StrictModel
from vaezoo.data import acquire
from vaezoo.data.idx import read_idx


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives (torchvision's folder layout), its checksums and how to fetch it."""

    name: str
    folder: str  # torchvision's class name, which names its folder: <root>/<folder>/raw
    md5: dict[str, str]
    fetch: Callable[[Path, Callable[[str], None]], None]
    image_shape: tuple[int, int, int] = (1, 28, 28)
    classes: int = 10

    def raw_dir(self, root: Path) -> Path:
        """torchvision's layout: <root>/<ClassName>/raw."""
        return root / self.folder / "raw"

    def read_split(self, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, H, W) uint8, labels (N,) int64) of the training or test split, from the IDX files.

        Read directly rather than through torchvision's dataset classes: importing torchvision costs
        about a second of start-up (it pulls in torch._dynamo) and reads the same bytes.
        """
        prefix = "train" if train else "t10k"
        raw = self.raw_dir(root)
        images = torch.from_numpy(read_idx(raw / f"{prefix}-images-idx3-ubyte"))
        labels = torch.from_numpy(read_idx(raw / f"{prefix}-labels-idx1-ubyte")).long()
        return images, labels


DATASETS: Registry[DatasetInfo] = Registry("dataset")

DATASETS.register("mnist")(DatasetInfo("mnist", "MNIST", acquire.MNIST_MD5, acquire.fetch_mnist))
DATASETS.register("fashion-mnist")(
    DatasetInfo("fashion-mnist", "FashionMNIST", acquire.FASHION_MNIST_MD5, acquire.fetch_fashion_mnist)
)


def default_root() -> Path:
    """$VAEZOO_DATA, else the user's cache folder."""
    if env := os.environ.get("VAEZOO_DATA"):
        return expand_home(env, "VAEZOO_DATA")
    cache = os.environ.get("XDG_CACHE_HOME") or expand_home("~", "the user cache folder") / ".cache"
    return Path(cache) / "vaezoo" / "data"


def expand_home(text: str, source: str) -> Path:
    """`text` with a leading ~ or ~user expanded; DataError naming `source` where that user or home is unknown."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory"
        raise DataError(f"{source} {text!r}: {text.split('/')[0]} is not a known user's home folder") from None


class DataSpec(StrictModel):
    dataset: str = Field(default="mnist", description="a registered dataset (see `vaezoo list`)")
    root: str | None = Field(default=None, description="data folder; default $VAEZOO_DATA, else the user cache")
    binarize: Literal["none", "dynamic", "static"] = "dynamic"
    val_size: int = Field(default=10000, ge=0, le=59000, description="last N training images held out")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        return DATASETS.require(name)

    def resolved_root(self) -> Path:
        return expand_home(self.root, "data.root") if self.root else default_root()
