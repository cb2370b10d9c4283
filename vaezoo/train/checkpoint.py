"""The training checkpoint: where a run stands after a whole number of epochs, written atomically and
read back exactly, so that a resumed run ends where an uninterrupted one would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vaezoo.core import io
from vaezoo.core.errors import OutputError, VaezooError
from vaezoo.evaluate.records import HistoryRow
from vaezoo.model.vae import VAE
from vaezoo.train.ema import WeightAverage
from vaezoo.train.scalars import ScalarRow

if TYPE_CHECKING:
    from vaezoo.spec.experiment import ExperimentSpec

#: spec fields that do not change what is trained: the run's name, where its data lives, where it runs and
#: how often it logs or checkpoints, how it is evaluated. train.epochs joins them when the learning rate does
#: not depend on the run's length (a constant schedule): such a run may be extended deliberately.
UNTRAINED = (
    "name",
    "data.root",
    "train.device",
    "train.cuda_graphs",
    "train.checkpoint_every",
    "train.log_every",
    "train.tensorboard",
    "eval",
)


@dataclass
class TrainState:
    """Where a run stands after a whole number of epochs; what a checkpoint restores."""

    epoch: int = 0
    step: int = 0
    history: list[HistoryRow] = field(default_factory=list)
    scalars: list[ScalarRow] = field(default_factory=list)


def training_fields(spec: ExperimentSpec) -> dict[str, Any]:
    """The part of `spec` that decides what is trained (everything but UNTRAINED), as plain JSON data."""
    fields = spec.model_dump(mode="json")
    untrained = UNTRAINED if spec.train.lr_schedule != "constant" else (*UNTRAINED, "train.epochs")
    for dotted in untrained:
        *parents, leaf = dotted.split(".")
        node = fields
        for key in parents:
            node = node[key]
        node.pop(leaf, None)
    return fields


def fingerprint(fields: dict[str, Any]) -> str:
    """A stable hash of training_fields(spec): equal exactly when the two specs train the same thing."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """The dotted path of the first key where the nested mappings a and b differ ("spec" when only the
    top differs)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "spec"


def check_binding(
    path: Path, epoch: int, spec_fields: Any, spec_fingerprint: Any, spec: ExperimentSpec, vouched: bool
) -> None:
    """OutputError (one line) unless the checkpoint was trained for `spec`: the same training fields, and no
    more epochs than the spec asks for. A checkpoint from before fingerprints is accepted only where
    `vouched` (the folder's spec.yaml, written before training began, matched the spec)."""
    if epoch > spec.train.epochs:
        raise OutputError(
            f"checkpoint {path} holds {epoch} epochs, more than this spec's train.epochs = "
            f"{spec.train.epochs}; raise train.epochs or choose another --out"
        )
    if spec_fields is None:
        if not vouched:
            raise OutputError(
                f"checkpoint {path} does not say which spec it was trained for (an older vaezoo wrote it) and "
                "no spec.yaml beside it vouches for it; choose another --out"
            )
        return
    if not isinstance(spec_fields, dict) or spec_fingerprint != fingerprint(spec_fields):
        raise OutputError(f"checkpoint {path} is damaged: its spec fingerprint does not match its spec fields")
    if spec_fields != training_fields(spec):
        key = first_difference(spec_fields, training_fields(spec))
        raise OutputError(
            f"checkpoint {path} was trained with another spec: {key} differs; resume with that spec or choose --out"
        )


@dataclass
class RNGStates:
    """Every random stream training draws from: torch's global CPU generator, CUDA's (None on the CPU)
    and the data generator (batch order, dynamic binarization)."""

    torch: torch.Tensor
    data: torch.Tensor
    cuda: torch.Tensor | None = None


@dataclass
class Checkpoint:
    """What checkpoint.pt holds: where a run stands after a whole number of epochs. On disk it is a plain
    dict of tensors and data (`payload`), with the same keys since checkpoints began, so old ones load."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    epoch: int
    step: int
    history: list[HistoryRow]
    rng: RNGStates
    ema: dict[str, torch.Tensor] | None = None  # the weight average, where train.ema is on
    scalars: list[ScalarRow] = field(default_factory=list)  # none in checkpoints before scalars.csv
    #: training_fields of the spec it trains (None where fit ran without a spec, and before fingerprints)
    spec_fields: dict[str, Any] | None = None
    spec_fingerprint: str | None = None

    @property
    def state(self) -> TrainState:
        return TrainState(self.epoch, self.step, self.history, self.scalars)

    def payload(self) -> dict[str, Any]:
        """The dict torch.save writes (tensors and plain data only, so it loads with weights_only=True)."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "ema": self.ema,
            "epoch": self.epoch,
            "step": self.step,
            "history": [row.to_json() for row in self.history],
            "scalars": [dataclasses.asdict(row) for row in self.scalars],
            "rng": {"torch": self.rng.torch, "cuda": self.rng.cuda, "data": self.rng.data},
            "spec_fields": self.spec_fields,
            "spec_fingerprint": self.spec_fingerprint,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: Path) -> Checkpoint:
        """The record a checked payload (see ENTRIES) holds; OutputError naming `path` where a row is damaged."""
        history = [HistoryRow.from_json(row, str(path)) for row in payload["history"]]
        with io.reading(path):
            scalars = [ScalarRow(**row) for row in payload.get("scalars", [])]
            rng = RNGStates(payload["rng"]["torch"], payload["rng"]["data"], payload["rng"].get("cuda"))
        return cls(
            payload["model"], payload["optimizer"], payload["epoch"], payload["step"], history, rng,
            payload.get("ema"), scalars, payload.get("spec_fields"), payload.get("spec_fingerprint"),
        )  # fmt: skip


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write `checkpoint` to `path` atomically."""
    io.save_torch(path, checkpoint.payload())


def save_checkpoint(
    path: Path,
    model: VAE,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    generator: torch.Generator,
    average: WeightAverage | None = None,
    spec_fields: dict[str, Any] | None = None,
) -> None:
    """Model, optimizer, weight average, schedule position, history and every RNG state, written atomically,
    with the training fields of the spec it trains (`training_fields`) and their fingerprint."""
    cuda_rng = torch.cuda.get_rng_state() if generator.device.type == "cuda" else None
    checkpoint = Checkpoint(
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        epoch=state.epoch,
        step=state.step,
        history=list(state.history),
        rng=RNGStates(torch.get_rng_state(), generator.get_state(), cuda_rng),
        ema=average.state_dict() if average is not None else None,
        scalars=list(state.scalars),
        spec_fields=spec_fields,
        spec_fingerprint=fingerprint(spec_fields) if spec_fields is not None else None,
    )
    write_checkpoint(path, checkpoint)


def load_checkpoint(
    path: Path,
    model: VAE,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    average: WeightAverage | None = None,
) -> TrainState:
    """Restore a checkpoint written by save_checkpoint (loaded with weights_only=True: data, never code).

    A checkpoint that does not fit (another spec's model, a missing entry, a damaged value) is an
    OutputError naming it.
    """
    checkpoint = read_checkpoint(path, model, generator.device)
    with io.reading(path):
        optimizer.load_state_dict(checkpoint.optimizer)
        if average is not None:
            if checkpoint.ema is None:
                raise VaezooError(f"{path} was written without train.ema, so its weight average cannot be resumed")
            average.load_state_dict(checkpoint.ema)
        torch.set_rng_state(checkpoint.rng.torch.cpu())
        if checkpoint.rng.cuda is not None and generator.device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint.rng.cuda.cpu())
        generator.set_state(checkpoint.rng.data.cpu())
    return checkpoint.state


#: each entry every checkpoint holds (see Checkpoint.payload), and what it must be; "ema" and "scalars" may be absent
ENTRIES: dict[str, Callable[[Any], bool]] = {
    "model": lambda value: isinstance(value, dict),
    "optimizer": lambda value: isinstance(value, dict) and {"state", "param_groups"} <= value.keys(),
    "epoch": lambda value: isinstance(value, int) and value >= 0,
    "step": lambda value: isinstance(value, int) and value >= 0,
    "history": lambda value: isinstance(value, list),
    "rng": lambda value: (
        isinstance(value, dict) and all(isinstance(value.get(k), torch.Tensor) for k in ("torch", "data"))
    ),
}


def read_checkpoint(
    path: Path, model: nn.Module, device: torch.device, spec: ExperimentSpec | None = None, vouched: bool = False
) -> Checkpoint:
    """The checkpoint at `path`, its weights loaded into `model`.

    Everything is checked before anything is used: a file that is not a vaezoo checkpoint, lacks an entry
    or holds one of the wrong kind, was trained for another spec than `spec` (see check_binding), or whose
    weights do not fit `model` (another latent size or kind) is an OutputError naming it.
    """
    payload = io.load_torch(path, device)
    if not isinstance(payload, dict):
        raise OutputError(f"checkpoint {path} is not a vaezoo checkpoint: it holds a {type(payload).__name__}")
    for entry, fits in ENTRIES.items():
        if entry not in payload or not fits(payload[entry]):
            problem = "lacks" if entry not in payload else "has a damaged"
            raise OutputError(f"checkpoint {path} is damaged or not a vaezoo checkpoint: it {problem} {entry!r} entry")
    if spec is not None:
        fields, saved_fingerprint = payload.get("spec_fields"), payload.get("spec_fingerprint")
        check_binding(path, payload["epoch"], fields, saved_fingerprint, spec, vouched)
    checkpoint = Checkpoint.from_payload(payload, path)
    load_weights(path, model, checkpoint.model)
    return checkpoint


def load_weights(path: Path, model: nn.Module, weights: Any) -> None:
    """model.load_state_dict(weights), after checking that every tensor is there with its shape: a
    mismatch is an OutputError naming the file and the first tensor that differs."""
    expected = model.state_dict()
    if not isinstance(weights, dict):
        raise OutputError(f"checkpoint {path} is damaged: its model weights are a {type(weights).__name__}")
    missing = [key for key in expected if key not in weights]
    extra = [key for key in weights if key not in expected]
    wrong = [
        key
        for key in expected
        if key in weights and (not isinstance(weights[key], torch.Tensor) or weights[key].shape != expected[key].shape)
    ]
    problem = (
        f"it lacks {missing[0]}"
        if missing
        else f"it has {extra[0]}, which this spec's model has not"
        if extra
        else f"{wrong[0]} is {_shape(weights[wrong[0]])} there, {_shape(expected[wrong[0]])} in this spec's model"
        if wrong
        else None
    )
    if problem is not None:
        raise OutputError(f"checkpoint {path} does not fit this spec's model (was it written for another?): {problem}")
    with io.reading(path):
        model.load_state_dict(weights)


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
