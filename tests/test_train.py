"""Training on the synthetic dataset: run folder contents, exact resume, and a diverging loss."""

import csv
import dataclasses
import json
import sys

import pytest
import torch

from tests.conftest import tiny_spec
from vaezoo.parts.objectives import ELBO
from vaezoo.runs import runner
from vaezoo.spec import build
from vaezoo.spec.experiment import validate
from vaezoo.train.loop import ProgressView, TrainingDiverged

TIMINGS = {"train_seconds", "train_images_per_second", "iw_seconds", "phase_seconds"}


def spec_for(root, **changes):
    return validate(tiny_spec(root, **changes), "test")


def test_run_writes_its_folder(tmp_path, synthetic_root):
    metrics = runner.run(spec_for(synthetic_root), tmp_path, figures=False)
    run_dir = tmp_path / "tiny"
    assert {p.name for p in run_dir.iterdir()} >= {"spec.yaml", "checkpoint.pt", "history.jsonl", "metrics.json"}
    assert not list(run_dir.glob("*.tmp")) and sorted(p.name for p in run_dir.glob(".*")) == [".lock", ".vaezoo-run"]
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"train_loss", "train_recon", "train_kl", "beta", "val_neg_elbo", "seconds"} <= history[0].keys()
    assert history[1]["beta"] == 1.0 and 0 < history[0]["beta"] < 1.0  # linear warm-up over 10 steps
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics.to_json()
    assert metrics.test_neg_elbo == pytest.approx(metrics.test_recon_nll + metrics.test_kl)
    assert metrics.epochs == 2 and metrics.binarize == "dynamic" and metrics.device == "cpu"
    assert metrics.kl_estimate == "closed-form" and metrics.discrete and metrics.test_bits_per_dim is not None
    phases = {"train", "validation", "test_elbo", "importance_sampling", "latent_statistics", "probe", "report"}
    phases |= {"sample_fid"}  # eval.fid_samples is on by default; eval.family_metrics is off
    assert set(metrics.phase_seconds) == phases and all(v >= 0 for v in metrics.phase_seconds.values())
    assert metrics.params == sum(
        p.numel() for p in build.build_model(spec_for(synthetic_root).model, (1, 28, 28)).parameters()
    )
    assert validate(__import__("yaml").safe_load((run_dir / "spec.yaml").read_text()), "saved") == spec_for(
        synthetic_root
    )


def test_same_seed_same_result_and_other_seed_differs(tmp_path, synthetic_root):
    a = runner.run(spec_for(synthetic_root), tmp_path / "a", figures=False)
    b = runner.run(spec_for(synthetic_root), tmp_path / "b", figures=False)
    c = runner.run(spec_for(synthetic_root, seed=1), tmp_path / "c", figures=False)
    assert a.test_neg_elbo == b.test_neg_elbo != c.test_neg_elbo


class Killed(Exception):
    pass


def killed_after_epoch_1(monkeypatch, spec, out):
    """Run `spec` into `out` and stop it (as a kill would) right after its first epoch is recorded."""
    original = ProgressView.epoch_done

    def die_after_epoch_1(self, row):
        original(self, row)
        if row.epoch == 1:
            raise Killed

    monkeypatch.setattr(ProgressView, "epoch_done", die_after_epoch_1)
    with pytest.raises(Killed):
        runner.run(spec, out, figures=False)
    monkeypatch.setattr(ProgressView, "epoch_done", original)


@pytest.mark.parametrize("binarize", ["dynamic", "static", "none"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, synthetic_root, monkeypatch, binarize):
    spec = spec_for(synthetic_root, train__epochs=3, data__binarize=binarize, kl={"kind": "cyclical", "cycles": 2})
    whole = runner.run(spec, tmp_path / "whole", figures=False)

    killed_after_epoch_1(monkeypatch, spec, tmp_path / "killed")
    assert not (tmp_path / "killed" / "tiny" / "metrics.json").exists()
    resumed = runner.run(spec, tmp_path / "killed", resume=True, figures=False)

    assert {k: v for k, v in resumed.to_json().items() if k not in TIMINGS} == {
        k: v for k, v in whole.to_json().items() if k not in TIMINGS
    }
    weights = [
        torch.load(tmp_path / d / "tiny" / "checkpoint.pt", weights_only=True)["model"] for d in ("whole", "killed")
    ]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    histories = [(tmp_path / d / "tiny" / "history.jsonl").read_text().splitlines() for d in ("whole", "killed")]
    strip = lambda rows: [
        {k: v for k, v in json.loads(r).items() if k not in {"seconds", "images_per_second", "val_seconds"}}
        for r in rows
    ]
    assert strip(histories[0]) == strip(histories[1])


def test_resuming_a_finished_run_trains_nothing(tmp_path, synthetic_root, monkeypatch):
    spec = spec_for(synthetic_root)
    first = runner.run(spec, tmp_path, figures=False)
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert runner.run(spec, tmp_path, resume=True, figures=False) == first


def test_a_non_finite_loss_stops_naming_epoch_and_step_and_keeps_the_last_checkpoint(
    tmp_path, synthetic_root, monkeypatch
):
    spec = spec_for(synthetic_root, train__epochs=3)
    calls = {"n": 0}
    original = ELBO.terms

    def poisoned(self, model, x, beta, weighting, **options):  # options: the training step's `step`
        terms = original(self, model, x, beta, weighting, **options)
        calls["n"] += 1
        if calls["n"] == 9:  # epoch 2 (7 steps per epoch), its 2nd step
            return dataclasses.replace(terms, loss=terms.loss * float("nan"))
        return terms

    monkeypatch.setattr(ELBO, "terms", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 9"):
        runner.run(spec, tmp_path, figures=False)
    checkpoint = torch.load(tmp_path / "tiny" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    assert not (tmp_path / "tiny" / "metrics.json").exists()


def test_checkpoints_every_n_epochs_and_a_kill_between_them_resumes_to_the_same_run(
    tmp_path, synthetic_root, monkeypatch
):
    spec = spec_for(synthetic_root, train__epochs=3, train__checkpoint_every=2, train__lr_schedule="cosine")
    whole = runner.run(spec, tmp_path / "whole", figures=False)
    killed_after_epoch_1(monkeypatch, spec, tmp_path / "killed")
    assert not (tmp_path / "killed" / "tiny" / "checkpoint.pt").exists()  # epoch 1 is not a checkpoint epoch
    resumed = runner.run(spec, tmp_path / "killed", resume=True, figures=False)
    assert {k: v for k, v in resumed.to_json().items() if k not in TIMINGS} == {
        k: v for k, v in whole.to_json().items() if k not in TIMINGS
    }
    history = [json.loads(r) for r in (tmp_path / "whole" / "tiny" / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[0]["lr"] == 1e-3 > history[1]["lr"] > history[2]["lr"]  # cosine, set per epoch


def test_per_step_scalars_are_written_and_a_resume_reproduces_them(tmp_path, synthetic_root, monkeypatch):
    spec = spec_for(synthetic_root, train__epochs=3, train__log_every=3)  # 7 steps an epoch: windows 3, 3, 1
    whole = runner.run(spec, tmp_path / "whole", figures=False)
    rows = list(csv.DictReader((tmp_path / "whole" / "tiny" / "scalars.csv").open()))
    assert [int(r["step"]) for r in rows] == [3, 6, 7, 9, 12, 14, 15, 18, 21]
    assert sum(int(r["steps"]) for r in rows) == 21 and all(float(r["grad_norm"]) > 0 for r in rows)
    assert {r["epoch"] for r in rows} == {"1", "2", "3"} and whole.epochs == 3
    # the steps' mean losses average to the epoch's mean loss (equal batches but the last)
    history = [json.loads(line) for line in (tmp_path / "whole" / "tiny" / "history.jsonl").read_text().splitlines()]
    first_epoch = [r for r in rows if r["epoch"] == "1"]
    mean = sum(float(r["loss"]) * int(r["steps"]) for r in first_epoch) / 7
    assert mean == pytest.approx(history[0]["train_loss"], rel=0.05)
    killed_after_epoch_1(monkeypatch, spec, tmp_path / "killed")
    runner.run(spec, tmp_path / "killed", resume=True, figures=False)
    strip = lambda path: [{k: v for k, v in r.items()} for r in csv.DictReader(path.open())]
    assert strip(tmp_path / "killed" / "tiny" / "scalars.csv") == strip(tmp_path / "whole" / "tiny" / "scalars.csv")


def test_the_tensorboard_log_holds_the_scalars_and_samples(tmp_path, synthetic_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runner.run(spec_for(synthetic_root, train__tensorboard=True, train__log_every=3), tmp_path, figures=False)
    events = EventAccumulator(str(tmp_path / "tiny" / "tensorboard")).Reload()
    assert {"step/loss", "step/grad_norm", "epoch/train_loss", "epoch/val_neg_elbo"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("step/loss")] == [3, 6, 7, 9, 12, 14]
    assert events.Tags()["images"] == ["prior samples"]


def test_without_the_tensorboard_package_the_run_stops_in_one_line_before_training(
    tmp_path, synthetic_root, monkeypatch
):
    from vaezoo.core.errors import VaezooError

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(VaezooError, match=r'pip install "vaezoo\[tensorboard\]"'):
        runner.run(spec_for(synthetic_root, train__tensorboard=True), tmp_path)
    assert not (tmp_path / "tiny").exists()


def test_running_totals_are_read_as_a_typed_record():
    import torch

    from vaezoo.model.vae import ELBOTerms
    from vaezoo.train.progress import RunningLoss

    running = RunningLoss(torch.device("cpu"))
    assert running.read().means() is None and running.read().first_bad_step is None
    for step, recon in enumerate([torch.tensor([100.0, 102.0]), torch.tensor([98.0, float("nan")])]):
        kl = torch.tensor([10.0, 12.0])
        running.add(ELBOTerms(recon_nll=recon, kl=kl, kl_per_dim=None, beta=1.0, loss=recon + kl), step)
    totals = running.read()
    assert totals.images == 4 and totals.first_bad_step == 1  # the NaN came at the second step
    running.reset()
    running.add(ELBOTerms(recon_nll=torch.tensor([90.0]), kl=torch.tensor([5.0]), kl_per_dim=None, beta=0.5,
                          loss=torch.tensor([92.5])), 7)  # fmt: skip
    assert running.read().means() == (92.5, 90.0, 5.0) and running.poll().first_bad_step is None
