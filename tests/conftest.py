from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests import synthetic
from vaezoo.runs import runner
from vaezoo.sweeps import executors

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # xdist's workers share the cores: torch's default of one thread per core in every worker would
    # oversubscribe them, and a 2-core machine then runs the suite slower in parallel than serially
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

SHARED_MNIST = Path(os.environ.get("VAEZOO_DATA", "/nonexistent")) / "MNIST" / "raw"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding the tiny synthetic dataset, registered as `synthetic`."""
    root = tmp_path_factory.mktemp("data")
    synthetic.register(root)
    return root


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs and sweeps started from the command line skip their figures, as runner's figures=False does."""
    skip_figures(monkeypatch.setattr)


def skip_figures(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Make runner.run and executors.run_sweep default to figures=False (the CLI looks them up when called)."""
    patch(runner, "run", functools.partial(runner.run, figures=False))
    patch(executors, "run_sweep", functools.partial(executors.run_sweep, figures=False))


def tiny_spec(root: Path, **changes: Any) -> dict[str, Any]:
    """A spec (as plain data) that trains in about a second on the synthetic dataset."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "data": {"dataset": "synthetic", "root": str(root), "binarize": "dynamic", "val_size": 40},
        "model": {
            "latent_dim": 4,
            "encoder": {"kind": "mlp", "hidden": [32]},
            "decoder": {"kind": "mlp", "hidden": [32]},
            "likelihood": {"kind": "bernoulli"},
        },
        "kl": {"kind": "linear", "beta": 1.0, "warmup_steps": 10},
        "train": {"epochs": 2, "batch_size": 32, "lr": 1e-3, "device": "cpu"},
        "eval": {"iw_samples": 8, "batch_size": 50},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for part in parents:
            node = node[part]
        node[last] = value
    return spec


needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="real MNIST not found under $VAEZOO_DATA")
