"""The checkpoint as a typed record: what write_checkpoint writes, read_checkpoint reads back; the file
keeps the payload keys it has always had, so a checkpoint written before the record existed loads."""

import dataclasses

import pytest
import torch

from tests.conftest import tiny_spec
from tests.records import history_row
from vaezoo.core.errors import OutputError
from vaezoo.runs import runner
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import ExperimentSpec, validate
from vaezoo.train.checkpoint import (
    Checkpoint,
    RNGStates,
    fingerprint,
    read_checkpoint,
    training_fields,
    write_checkpoint,
)
from vaezoo.train.scalars import ScalarRow

#: what save_checkpoint wrote before Checkpoint existed, key for key (the on-disk format)
LEGACY_KEYS = [
    "model",
    "optimizer",
    "ema",
    "epoch",
    "step",
    "history",
    "scalars",
    "rng",
    "spec_fields",
    "spec_fingerprint",
]
SHAPE = (1, 28, 28)


def spec() -> ExperimentSpec:
    return validate({"name": "x", "model": {"latent_dim": 3, "encoder": {"kind": "mlp", "hidden": [8]}}}, "t")


def same(a, b) -> bool:
    """Equal payloads: the same keys in the same order, equal tensors and values of the same types."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def checkpoint_of(model: torch.nn.Module, spec_fields: dict | None, epoch: int = 2) -> Checkpoint:
    optimizer = torch.optim.Adam(model.parameters())
    return Checkpoint(
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        epoch=epoch,
        step=7 * epoch,
        history=[history_row(e + 1) for e in range(epoch)],
        rng=RNGStates(torch.get_rng_state(), torch.Generator().manual_seed(3).get_state()),
        ema={name: value + 1 for name, value in model.state_dict().items()},
        scalars=[ScalarRow(7, 1, 7, 90.0, 80.0, 10.0, 1.5, 1.0, 1e-3)],
        spec_fields=spec_fields,
        spec_fingerprint=fingerprint(spec_fields) if spec_fields is not None else None,
    )


def test_a_checkpoint_round_trips_through_write_and_read(tmp_path):
    model = build_model(spec().model, SHAPE)
    written = checkpoint_of(model, training_fields(spec()))
    write_checkpoint(tmp_path / "checkpoint.pt", written)
    fresh = build_model(spec().model, SHAPE)
    read = read_checkpoint(tmp_path / "checkpoint.pt", fresh, torch.device("cpu"), spec())
    assert same(read.payload(), written.payload())
    assert read.history == written.history and read.scalars == written.scalars and read.rng.cuda is None
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert list(torch.load(tmp_path / "checkpoint.pt", weights_only=True)) == LEGACY_KEYS


def test_a_checkpoint_written_before_the_record_loads_and_writes_back_unchanged(tmp_path):
    """The dict the old save_checkpoint wrote, built here by hand, reads as a Checkpoint and is written
    back to the very same payload; one without scalars (older still) reads with none."""
    model = build_model(spec().model, SHAPE)
    fields = training_fields(spec())
    legacy = {
        "model": model.state_dict(),
        "optimizer": torch.optim.Adam(model.parameters()).state_dict(),
        "ema": None,
        "epoch": 1,
        "step": 5,
        "history": [history_row(1).to_json()],
        "scalars": [dataclasses.asdict(ScalarRow(5, 1, 5, 90.0, 80.0, 10.0, 1.5, 1.0, 1e-3))],
        "rng": {"torch": torch.get_rng_state(), "cuda": None, "data": torch.Generator().get_state()},
        "spec_fields": fields,
        "spec_fingerprint": fingerprint(fields),
    }
    torch.save(legacy, tmp_path / "old.pt")
    read = read_checkpoint(tmp_path / "old.pt", build_model(spec().model, SHAPE), torch.device("cpu"), spec())
    assert read.history == [history_row(1)] and read.epoch == 1 and read.step == 5 and read.ema is None
    write_checkpoint(tmp_path / "again.pt", read)
    assert same(torch.load(tmp_path / "again.pt", weights_only=True), legacy)
    older = {k: v for k, v in legacy.items() if k not in ("scalars", "ema", "spec_fields", "spec_fingerprint")}
    torch.save(older, tmp_path / "older.pt")
    read = read_checkpoint(tmp_path / "older.pt", build_model(spec().model, SHAPE), torch.device("cpu"))
    assert read.scalars == [] and read.spec_fields is None and read.ema is None


def test_a_trained_run_s_checkpoint_round_trips(tmp_path, synthetic_root):
    run_spec = validate(tiny_spec(synthetic_root, train__epochs=2), "test")
    runner.run(run_spec, tmp_path, figures=False)
    path = tmp_path / run_spec.name / "checkpoint.pt"
    model = build_model(run_spec.model, SHAPE)
    checkpoint = read_checkpoint(path, model, torch.device("cpu"), run_spec)
    assert (
        checkpoint.epoch == 2 and len(checkpoint.history) == 2 and checkpoint.spec_fields == training_fields(run_spec)
    )
    write_checkpoint(tmp_path / "again.pt", checkpoint)
    assert same(torch.load(tmp_path / "again.pt", weights_only=True), torch.load(path, weights_only=True))


def test_a_damaged_fingerprint_is_refused_naming_the_file(tmp_path):
    model = build_model(spec().model, SHAPE)
    damaged = dataclasses.replace(checkpoint_of(model, training_fields(spec())), spec_fingerprint="0" * 64)
    write_checkpoint(tmp_path / "checkpoint.pt", damaged)
    with pytest.raises(OutputError, match="checkpoint.pt is damaged: its spec fingerprint"):
        read_checkpoint(tmp_path / "checkpoint.pt", model, torch.device("cpu"), spec())
