"""The training checkpoint: where a run stands after a whole number of epochs, written atomically and
read back exactly, so that a resumed run ends where an uninterrupted one would."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaezoo import io
from vaezoo.ema import WeightAverage
from vaezoo.errors import VaezooError
from vaezoo.metrics import HistoryRow
from vaezoo.model import VAE
from vaezoo.scalars import ScalarRow


@dataclass
class TrainState:
    """Where a run stands after a whole number of epochs; what a checkpoint restores."""

    epoch: int = 0
    step: int = 0
    history: list[HistoryRow] = field(default_factory=list)
    scalars: list[ScalarRow] = field(default_factory=list)


def save_checkpoint(
    path: Path,
    model: VAE,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    generator: torch.Generator,
    average: WeightAverage | None = None,
) -> None:
    """Model, optimizer, weight average, schedule position, history and every RNG state, written atomically."""
    cuda_rng = torch.cuda.get_rng_state() if generator.device.type == "cuda" else None
    io.save_torch(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "ema": average.state_dict() if average is not None else None,
            "epoch": state.epoch,
            "step": state.step,
            "history": [row.to_json() for row in state.history],
            "scalars": [dataclasses.asdict(row) for row in state.scalars],
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng, "data": generator.get_state()},
        },
    )


def load_checkpoint(
    path: Path,
    model: VAE,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    average: WeightAverage | None = None,
) -> TrainState:
    """Restore a checkpoint written by save_checkpoint (loaded with weights_only=True: data, never code)."""
    checkpoint = io.load_torch(path, generator.device)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if average is not None:
        if checkpoint.get("ema") is None:
            raise VaezooError(f"{path} was written without train.ema, so its weight average cannot be resumed")
        average.load_state_dict(checkpoint["ema"])
    torch.set_rng_state(checkpoint["rng"]["torch"].cpu())
    if checkpoint["rng"]["cuda"] is not None and generator.device.type == "cuda":
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"].cpu())
    generator.set_state(checkpoint["rng"]["data"].cpu())
    history = [HistoryRow.from_json(row, str(path)) for row in checkpoint["history"]]
    scalars = [ScalarRow(**row) for row in checkpoint.get("scalars", [])]  # none in older checkpoints
    return TrainState(epoch=checkpoint["epoch"], step=checkpoint["step"], history=history, scalars=scalars)
