"""A finished run trained further (`Run.train_more`, `vaezoo.run(..., train__epochs=N)`, `vaezoo run --resume
--set train.epochs=N`) continues from its checkpoint and ends where a run of that length from the start
ends, with the same seed: weights, history and test metrics; its metrics, figures and report are rewritten."""

import json

import pytest
import torch
import yaml

import vaezoo
from tests.conftest import tiny_spec
from tests.test_train import TIMINGS, Killed
from vaezoo.cli.main import main
from vaezoo.core.errors import OutputError
from vaezoo.runs import runner
from vaezoo.spec.experiment import validate
from vaezoo.train.loop import ProgressView

#: what differs between two runs of the same training: seconds
PER_EPOCH_TIMINGS = {"seconds", "images_per_second", "val_seconds"}


def same_run(a, b) -> None:
    """The run folders a and b hold the same trained run: weights, history and metrics but for seconds."""
    weights = [torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (a, b)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    rows = [[json.loads(line) for line in (d / "history.jsonl").read_text().splitlines()] for d in (a, b)]
    strip = lambda table: [{k: v for k, v in row.items() if k not in PER_EPOCH_TIMINGS} for row in table]
    assert strip(rows[0]) == strip(rows[1])
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (a, b)]
    assert {k: v for k, v in metrics[0].items() if k not in TIMINGS} == {
        k: v for k, v in metrics[1].items() if k not in TIMINGS
    }


@pytest.fixture
def spec(synthetic_root):
    """A tiny spec with a KL warm-up longer than the first run and a weight average: both must carry on."""
    return tiny_spec(synthetic_root, train__epochs=2, train__ema=0.9, kl={"kind": "linear", "warmup_steps": 20})


def test_train_more_equals_a_run_of_that_length_from_the_start(spec, tmp_path):
    whole = vaezoo.run(spec, out=tmp_path / "whole", progress=False, train__epochs=4)
    run = vaezoo.run(spec, out=tmp_path / "more", progress=False)
    figure = run.path / "figures" / "samples.png"
    before = (figure.stat().st_mtime_ns, (run.path / "report.md").read_text())
    assert run.train_more(2) is run
    assert run.metrics.epochs == 4 and len(run.history) == 4 and run.spec.train.epochs == 4
    same_run(whole.path, run.path)
    assert (
        run.metrics == vaezoo.load(run.path).metrics
        and yaml.safe_load((run.path / "spec.yaml").read_text())["train"]["epochs"] == 4
    )
    assert figure.stat().st_mtime_ns > before[0] and (run.path / "report.md").read_text() != before[1]
    torch.testing.assert_close(run.sample(4, seed=1), whole.sample(4, seed=1), rtol=0, atol=0)


def test_asking_vaezoo_run_for_more_epochs_extends_the_finished_run(spec, tmp_path, monkeypatch):
    vaezoo.run(spec, out=tmp_path / "whole", progress=False, train__epochs=3)
    vaezoo.run(spec, out=tmp_path / "more", progress=False)
    longer = vaezoo.run(spec, out=tmp_path / "more", progress=False, train__epochs=3)
    assert longer.metrics.epochs == 3
    same_run(tmp_path / "whole" / "tiny", tmp_path / "more" / "tiny")
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert vaezoo.run(spec, out=tmp_path / "more", progress=False, train__epochs=3).metrics == longer.metrics


def test_the_command_line_extends_a_finished_run_with_resume(spec, tmp_path, capsys, no_figures):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    run = ["run", str(path), "--quiet", "--out"]
    assert main([*run, str(tmp_path / "whole"), "--set", "train.epochs=3"]) == 0
    assert main([*run, str(tmp_path / "more")]) == 0
    assert main([*run, str(tmp_path / "more"), "--resume", "--set", "train.epochs=3"]) == 0
    same_run(tmp_path / "whole" / "tiny", tmp_path / "more" / "tiny")


def test_an_extension_stopped_midway_resumes_to_the_same_run(spec, tmp_path, monkeypatch):
    longer = validate(spec | {"train": spec["train"] | {"epochs": 4}}, "t")
    runner.run(longer, tmp_path / "whole", figures=False)
    runner.run(validate(spec, "t"), tmp_path / "more", figures=False)
    original = ProgressView.epoch_done

    def stop_after_epoch_3(self, row):  # the extension's first epoch, checkpointed just before
        original(self, row)
        if row.epoch == 3:
            raise Killed

    monkeypatch.setattr(ProgressView, "epoch_done", stop_after_epoch_3)
    with pytest.raises(Killed):
        runner.run(longer, tmp_path / "more", resume=True, figures=False)
    monkeypatch.setattr(ProgressView, "epoch_done", original)
    assert not (tmp_path / "more" / "tiny" / "metrics.json").exists()  # re-opened: no stale numbers left
    with pytest.raises(OutputError, match="has no metrics.json"):
        vaezoo.load(tmp_path / "more" / "tiny")
    assert runner.run(longer, tmp_path / "more", resume=True, figures=False).epochs == 4
    same_run(tmp_path / "whole" / "tiny", tmp_path / "more" / "tiny")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train__epochs": 1}, r"is a finished run of 2 epochs, and this spec differs at train.epochs"),
        ({"eval__iw_samples": 3}, r"is a finished run of 2 epochs, and this spec differs at eval.iw_samples"),
        ({"train__lr": 0.01}, r"differs from this spec at train.lr; resume with the same spec"),
    ],
)
def test_a_finished_run_refuses_other_changes_in_python_words(spec, tmp_path, changes, message):
    vaezoo.run(spec, out=tmp_path, progress=False)
    with pytest.raises(OutputError, match=message) as error:
        vaezoo.run(spec, out=tmp_path, progress=False, **changes)
    assert "--" not in str(error.value)


@pytest.mark.parametrize(
    "changes",
    [{"train__lr_schedule": "cosine"}, {"kl": {"kind": "cyclical", "cycles": 2}}],
    ids=["cosine-lr", "cyclical-kl"],
)
def test_a_run_whose_schedule_spans_its_length_is_not_extended(synthetic_root, tmp_path, changes):
    spec = tiny_spec(synthetic_root, train__epochs=1, **{k: v for k, v in changes.items() if "__" in k})
    spec |= {k: v for k, v in changes.items() if "__" not in k}
    run = vaezoo.run(spec, out=tmp_path, progress=False)
    with pytest.raises(OutputError, match=r"differs from this spec at train.epochs \(its learning-rate schedule or KL"):
        run.train_more(1)
    assert vaezoo.load(run.path).metrics == run.metrics  # untouched


def test_train_more_checks_its_count(spec, tmp_path):
    run = vaezoo.run(spec, out=tmp_path, progress=False, train__epochs=1, eval__iw_samples=2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(vaezoo.VaezooError, match="epochs"):
            run.train_more(bad)


def test_a_sweep_refuses_rather_than_skips_a_finished_point_asked_for_more_epochs(
    tmp_path, synthetic_root, capsys, no_figures
):
    from tests.test_sweep import sweep_file

    path = sweep_file(tmp_path, synthetic_root, seeds=None)
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs"), "--set", "train.epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "is a finished run of 2 epochs, and this spec differs at train.epochs" in err
    assert "trained further alone" in err
