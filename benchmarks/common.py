"""What every benchmark shares: the classic model's spec, the machine description and the results file."""

from __future__ import annotations

import datetime
import platform
import shlex
import statistics
import sys
from pathlib import Path

import torch
import torchvision

from vaezoo.spec.experiment import ExperimentSpec, validate

RESULTS = Path(__file__).resolve().parent / "results"


def classic_spec(**train: object) -> ExperimentSpec:
    """The classic 784-400-20 Bernoulli VAE with dynamic binarization, Adam lr 1e-3, beta 1."""
    return validate(
        {
            "name": "classic",
            "data": {"dataset": "mnist", "binarize": "dynamic", "val_size": 10000},
            "model": {
                "latent_dim": 20,
                "encoder": {"kind": "mlp", "hidden": [400]},
                "decoder": {"kind": "mlp", "hidden": [400]},
            },
            "kl": {"kind": "constant", "beta": 1.0},
            "train": {"batch_size": 128, "lr": 1e-3, **train},
        },
        "benchmark",
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def header(title: str, device: torch.device) -> list[str]:
    """Markdown lines that say what was measured where, with which versions, when, and how to repeat it."""
    return [
        f"# {title}",
        "",
        f"- device: {device_name(device)}",
        f"- versions: torch {torch.__version__}, torchvision {torchvision.__version__}, Python {platform.python_version()}",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `python -m benchmarks.{Path(sys.argv[0]).stem} {shlex.join(sys.argv[1:])}`",
        "",
    ]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write(name: str, lines: list[str]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return path
