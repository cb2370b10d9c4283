"""Divergence: the stop names only a checkpoint that exists (or says there is none), names the run (a
sweep's point), and a loss exploding to huge finite values is stopped like a NaN."""

import dataclasses

import pytest
import torch
import yaml

from tests.conftest import tiny_spec
from tests.reliability.conftest import fails_with_one_line
from vaezoo.parts.objectives import ELBO
from vaezoo.runs import runner
from vaezoo.spec.experiment import validate
from vaezoo.train.loop import TrainingDiverged
from vaezoo.train.progress import DIVERGED_NATS

pytestmark = pytest.mark.reliability

STEPS_PER_EPOCH = 7  # 200 synthetic training images in batches of 32


def poison(monkeypatch, value: float, at_call: int, when=lambda model: True) -> None:
    """From the `at_call`-th training step on (counted over models for which `when` holds), every
    image's loss is `value`."""
    calls = {"n": 0}
    original = ELBO.terms

    def poisoned(self, model, x, beta, weighting, **options):  # options: the training step's `step`
        terms = original(self, model, x, beta, weighting, **options)
        if not model.training or not when(model):
            return terms
        calls["n"] += 1
        return dataclasses.replace(terms, loss=terms.loss * 0 + value) if calls["n"] >= at_call else terms

    monkeypatch.setattr(ELBO, "terms", poisoned)


#: (the poisoned loss, the step it starts at, checkpoint_every, the checkpoint's epoch kept or None)
CASES = {
    "nan-in-the-first-epoch": (float("nan"), 2, 1, None),
    "inf-in-the-first-step": (float("inf"), 1, 1, None),
    "huge-in-the-first-epoch": (1e21, 3, 1, None),
    "huge-negative-in-epoch-2": (-1e21, STEPS_PER_EPOCH + 2, 1, 1),
    "nan-in-epoch-3": (float("nan"), 2 * STEPS_PER_EPOCH + 1, 1, 2),
    "just-beyond-the-bound": (DIVERGED_NATS * 1.5, 2 * STEPS_PER_EPOCH + 3, 1, 2),
    "between-sparse-checkpoints": (1e30, 3 * STEPS_PER_EPOCH + 2, 2, 2),
    "before-the-first-sparse-checkpoint": (1e30, STEPS_PER_EPOCH + 2, 2, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_stop_names_only_a_checkpoint_that_exists(tmp_path, synthetic_root, monkeypatch, case):
    value, at_call, every, kept = CASES[case]
    spec = validate(tiny_spec(synthetic_root, train__epochs=4, train__checkpoint_every=every), "test")
    poison(monkeypatch, value, at_call)
    with pytest.raises(TrainingDiverged) as caught:
        runner.run(spec, tmp_path, figures=False)
    message = str(caught.value)
    checkpoint = tmp_path / "tiny" / "checkpoint.pt"
    epoch, step = (at_call - 1) // STEPS_PER_EPOCH + 1, at_call
    assert f"run {tmp_path / 'tiny'}:" in message and f"epoch {epoch}, step {step} " in message, message
    if kept is None:
        assert "it has no checkpoint yet" in message and not checkpoint.exists()
    else:
        assert f"its checkpoint of epoch {kept} is kept" in message
        saved = torch.load(checkpoint, weights_only=True)
        assert saved["epoch"] == kept and all(torch.isfinite(t).all() for t in saved["model"].values())
    assert not (tmp_path / "tiny" / "metrics.json").exists()


@pytest.mark.parametrize("value", [1e3, DIVERGED_NATS / 2, -1e4])
def test_large_but_possible_losses_are_not_a_divergence(tmp_path, synthetic_root, monkeypatch, value):
    spec = validate(tiny_spec(synthetic_root, train__epochs=1), "test")
    poison(monkeypatch, value, 2)
    metrics = runner.run(spec, tmp_path, figures=False)
    assert metrics.epochs == 1


def test_a_resumed_run_that_diverges_at_once_names_the_checkpoint_it_resumed(tmp_path, synthetic_root, monkeypatch):
    spec = validate(tiny_spec(synthetic_root, train__epochs=3), "test")
    with monkeypatch.context() as patch:
        poison(patch, float("nan"), STEPS_PER_EPOCH + 1)
        with pytest.raises(TrainingDiverged, match="its checkpoint of epoch 1 is kept"):
            runner.run(spec, tmp_path, figures=False)
    poison(monkeypatch, 1e25, 1)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 8 .*its checkpoint of epoch 1 is kept"):
        runner.run(spec, tmp_path, resume=True, figures=False)


def test_a_real_explosion_stops_with_one_line(tmp_path, synthetic_root, capsys, no_figures):
    """A fixed Gaussian sigma of 1e-6 puts the loss near 1e14 nats per image from the first step."""
    spec = tmp_path / "spec.yaml"
    data = tiny_spec(synthetic_root, train__epochs=2)
    data["model"]["likelihood"] = {"kind": "gaussian", "sigma": "fixed", "value": 1e-6}
    spec.write_text(yaml.safe_dump(data))
    argv = ["run", str(spec), "--out", str(tmp_path / "runs"), "--quiet"]
    fails_with_one_line(capsys, argv, "the loss diverged", "epoch 1", "it has no checkpoint yet", "tiny")


@pytest.mark.parametrize(
    ("changes", "point"),
    [
        ({"grid": {"model.latent_dim": [3, 4]}}, "latent_dim=4"),
        ({"variants": [{"name": "narrow", "set": {"model.latent_dim": 3}}, {"name": "wide"}]}, "wide"),
        ({"grid": {"model.latent_dim": [4, 3]}, "seeds": [5]}, "latent_dim=4_seed=5"),
    ],
)
def test_a_sweep_says_which_point_diverged(tmp_path, synthetic_root, capsys, monkeypatch, no_figures, changes, point):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": tiny_spec(synthetic_root, train__epochs=1)} | changes))
    poison(monkeypatch, float("nan"), 3, when=lambda model: model.latent_dim == 4)
    out = tmp_path / "runs"
    fails_with_one_line(capsys, ["sweep", str(path), "--out", str(out)], f"run {out / 's' / point}:", "diverged")
