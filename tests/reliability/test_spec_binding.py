"""A checkpoint is bound to the spec it was trained for: it carries that spec's training fields and their
fingerprint, and a resume (or eval) with another spec, or into fewer epochs than it holds, is one line at
status 2 naming the first differing key, with nothing in the folder changed."""

from pathlib import Path

import pytest
import torch

from tests.reliability.conftest import fails_with_one_line, snapshot
from vaezoo.spec.experiment import load_spec
from vaezoo.train.checkpoint import fingerprint, training_fields

pytestmark = pytest.mark.reliability


def _edit(run_dir: Path, change) -> None:
    path = run_dir / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)


def _interrupted(base: Path) -> Path:
    """The finished run as if killed after its checkpoint: no metrics.json."""
    run_dir = base / "runs" / "tiny"
    (run_dir / "metrics.json").unlink()
    return run_dir


def _resume(base: Path, *sets: str) -> list[str]:
    argv = ["run", str(base / "spec.yaml"), "--out", str(base / "runs"), "--resume", "--quiet"]
    return argv + [arg for key in sets for arg in ("--set", key)]


def test_the_checkpoint_holds_its_specs_fingerprint(trained):
    checkpoint = torch.load(trained / "runs" / "tiny" / "checkpoint.pt", weights_only=True)
    spec = load_spec(trained / "runs" / "tiny" / "spec.yaml")
    assert checkpoint["spec_fields"] == training_fields(spec)
    assert checkpoint["spec_fingerprint"] == fingerprint(training_fields(spec))
    assert "eval" not in checkpoint["spec_fields"] and "name" not in checkpoint["spec_fields"]


def test_what_does_not_train_is_left_out_of_the_fingerprint(trained):
    spec = load_spec(trained / "runs" / "tiny" / "spec.yaml")
    same = spec.model_copy(update={"eval": spec.eval.model_copy(update={"iw_samples": 99}), "name": "other"})
    assert fingerprint(training_fields(same)) == fingerprint(training_fields(spec))
    longer = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": 9})})
    assert fingerprint(training_fields(longer)) == fingerprint(training_fields(spec))  # a constant lr may extend
    cosine = spec.train.model_copy(update={"lr_schedule": "cosine"})
    stretched = spec.model_copy(update={"train": cosine.model_copy(update={"epochs": 9})})
    assert training_fields(stretched) != training_fields(spec.model_copy(update={"train": cosine}))


def test_a_checkpoint_of_more_epochs_is_not_resumed_into_fewer(run_copy, capsys):
    run_dir = _interrupted(run_copy)
    _edit(run_dir, lambda c: c.__setitem__("epoch", 5))
    before = snapshot(run_dir)
    fails_with_one_line(capsys, _resume(run_copy), "holds 5 epochs", "train.epochs = 1")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("change", "key"),
    [("seed=3", "seed"), ("kl.beta=0.5", "kl.beta"), ("train.lr=0.01", "train.lr"), ("data.val_size=20", "data")],
)
def test_a_checkpoint_of_another_spec_names_the_first_differing_key(run_copy, capsys, change, key):
    run_dir = _interrupted(run_copy)
    (run_dir / "spec.yaml").unlink()  # only the checkpoint can tell
    before = snapshot(run_dir)
    line = fails_with_one_line(capsys, _resume(run_copy, change), "trained with another spec")
    assert f": {key}" in line, line
    assert snapshot(run_dir) == before


def test_a_checkpoint_without_a_fingerprint_needs_its_spec_yaml(run_copy, capsys):
    run_dir = _interrupted(run_copy)
    _edit(run_dir, lambda c: [c.pop("spec_fields"), c.pop("spec_fingerprint")])  # as an older vaezoo wrote it
    saved = (run_dir / "spec.yaml").read_bytes()
    (run_dir / "spec.yaml").unlink()
    before = snapshot(run_dir)
    fails_with_one_line(capsys, _resume(run_copy), "does not say which spec")
    assert snapshot(run_dir) == before
    (run_dir / "spec.yaml").write_bytes(saved)  # the spec.yaml written before training vouches for it
    capsys.readouterr()
    from vaezoo.cli.main import main

    assert main(_resume(run_copy, "eval.iw_samples=4")) == 0, capsys.readouterr().err  # eval may change
    assert (run_dir / "metrics.json").exists()


def test_a_tampered_fingerprint_is_a_damaged_checkpoint(run_copy, capsys):
    run_dir = _interrupted(run_copy)
    _edit(run_dir, lambda c: c["spec_fields"].__setitem__("seed", 7))
    fails_with_one_line(capsys, _resume(run_copy), "damaged", "fingerprint")


def test_eval_of_a_run_whose_checkpoint_came_from_another_spec(run_copy, capsys):
    run_dir = run_copy / "runs" / "tiny"
    _edit(run_dir, lambda c: [c["spec_fields"].__setitem__("seed", 7), c.update(spec_fingerprint=None)])
    _edit(run_dir, lambda c: c.update(spec_fingerprint=fingerprint(c["spec_fields"])))
    before = snapshot(run_dir)
    fails_with_one_line(capsys, ["eval", str(run_dir)], "trained with another spec", "seed")
    assert snapshot(run_dir) == before
