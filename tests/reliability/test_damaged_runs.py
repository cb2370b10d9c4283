"""Damaged run and sweep folders: a checkpoint that loads but does not fit the spec, and a metrics.json,
history.jsonl or sweep.json that is garbage or incomplete. Every command that reads them (run --resume,
eval, figures, report, a sweep's re-run) exits 2 with one line naming the file, and changes nothing."""

import json
from pathlib import Path

import pytest
import torch

from tests.reliability.conftest import fails_with_one_line, snapshot
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import load_spec

pytestmark = pytest.mark.reliability


def _other_model(run_dir: Path, **model: object) -> dict:
    """The weights of the run's model with `model`'s changes: what another spec's run would have saved."""
    spec = load_spec(run_dir / "spec.yaml")
    changed = type(spec.model).model_validate(spec.model.model_dump() | model)
    return build_model(changed, (1, 28, 28)).state_dict()


def _edit(run_dir: Path, change) -> None:
    path = run_dir / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint, run_dir)
    torch.save(checkpoint, path)


def _set(key, value):
    return lambda checkpoint, run_dir: checkpoint.__setitem__(key, value)


def _drop_weight(checkpoint, run_dir):
    checkpoint["model"].pop(next(iter(checkpoint["model"])))


def _extra_weight(checkpoint, run_dir):
    checkpoint["model"]["decoder.extra.weight"] = torch.zeros(3)


#: (what is done to checkpoint.pt, words the error line must hold)
CHECKPOINTS = {
    "another-latent-size": (
        lambda c, d: c.__setitem__("model", _other_model(d, latent_dim=3)),
        ["does not fit this spec's model", "there"],
    ),
    "another-posterior-kind": (
        lambda c, d: c.__setitem__("model", _other_model(d, posterior={"kind": "planar", "steps": 2})),
        ["does not fit this spec's model", "posterior.head.weight"],
    ),
    "a-missing-weight": (_drop_weight, ["does not fit this spec's model", "it lacks"]),
    "an-extra-weight": (_extra_weight, ["decoder.extra.weight"]),
    "weights-not-a-mapping": (_set("model", [1, 2]), ["has a damaged 'model' entry"]),
    "no-optimizer": (lambda c, d: c.pop("optimizer"), ["lacks 'optimizer' entry"]),
    "no-rng": (lambda c, d: c.pop("rng"), ["lacks 'rng' entry"]),
    "epoch-a-string": (_set("epoch", "one"), ["has a damaged 'epoch' entry"]),
    "history-rows-damaged": (_set("history", [{"epoch": "x"}]), ["epoch"]),
}
COMMANDS = ["resume", "eval", "figures"]


def _argv(command: str, base: Path) -> list[str]:
    run_dir = base / "runs" / "tiny"
    if command == "resume":
        (run_dir / "metrics.json").unlink()  # an interrupted run: resume reads its checkpoint
        return ["run", str(base / "spec.yaml"), "--out", str(base / "runs"), "--resume", "--quiet"]
    return [command, str(run_dir)]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", sorted(CHECKPOINTS))
def test_a_checkpoint_that_does_not_fit_is_one_line(run_copy, capsys, no_figures, damage, command):
    change, words = CHECKPOINTS[damage]
    run_dir = run_copy / "runs" / "tiny"
    _edit(run_dir, change)
    argv = _argv(command, run_copy)
    before = snapshot(run_dir)
    fails_with_one_line(capsys, argv, str(run_dir / "checkpoint.pt"), *words)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_a_truncated_checkpoint_is_one_line(run_copy, capsys, no_figures, command, cut):
    path = run_copy / "runs" / "tiny" / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * len(data)) if isinstance(cut, float) else cut])
    fails_with_one_line(capsys, _argv(command, run_copy), str(path))


def test_resume_does_not_write_spec_yaml_before_the_checkpoint_is_known_to_fit(run_copy, capsys, no_figures):
    run_dir = run_copy / "runs" / "tiny"
    _edit(run_dir, CHECKPOINTS["another-latent-size"][0])
    spec = load_spec(run_dir / "spec.yaml")
    (run_dir / "spec.yaml").unlink()  # written by the run this checkpoint came from: nothing says which
    argv = _argv("resume", run_copy)
    before = snapshot(run_dir)
    fails_with_one_line(capsys, argv, "does not fit")
    assert snapshot(run_dir) == before and not (run_dir / "spec.yaml").exists()
    assert spec.model.latent_dim == 4


#: metrics.json contents: garbage, empty, another JSON type, incomplete, a field of the wrong type
METRICS = {
    "garbage": b"{not json",
    "empty": b"",
    "binary": b"\xff\xfe\x00\x01",
    "a-list": b"[1, 2, 3]",
    "incomplete": b'{"test_nll_iw": 90.0}',
    "wrong-type": None,  # the real file with one number replaced by a string
    "truncated": None,  # the real file cut in half
}


def _damage_metrics(path: Path, case: str) -> None:
    if case == "wrong-type":
        data = json.loads(path.read_text())
        path.write_text(json.dumps(data | {"test_kl": "lots"}))
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(METRICS[case])


@pytest.mark.parametrize("command", ["eval", "figures", "report", "rerun"])
@pytest.mark.parametrize("case", sorted(METRICS))
def test_a_damaged_metrics_json_is_one_line(run_copy, capsys, no_figures, case, command):
    run_dir = run_copy / "runs" / "tiny"
    path = run_dir / "metrics.json"
    _damage_metrics(path, case)
    before = snapshot(run_dir)
    if command == "rerun":  # a finished run is reused as it is
        argv = ["run", str(run_copy / "spec.yaml"), "--out", str(run_copy / "runs"), "--resume", "--quiet"]
    else:
        argv = [command, str(run_dir)]
    fails_with_one_line(capsys, argv, str(path))
    assert snapshot(run_dir) == before


HISTORIES = {
    "garbage-line": "not json\n",
    "a-list-line": "[1, 2]\n",
    "incomplete-row": '{"epoch": 1}\n',
    "wrong-type": '{"epoch": "first", "step": 7, "train_loss": 1, "train_recon": 1, "train_kl": 0, "beta": 1, '
    '"seconds": 1, "images_per_second": 1}\n',
    "binary": "\udcff",
}


@pytest.mark.parametrize("case", sorted(HISTORIES))
def test_a_damaged_history_is_one_line_for_run_and_sweep_reports(run_copy, sweep_copy, capsys, case):
    for folder in (run_copy / "runs" / "tiny", sweep_copy / "runs" / "seeds"):
        path = (folder if folder.name == "tiny" else folder / "seed=1") / "history.jsonl"
        path.write_bytes(HISTORIES[case].encode("utf-8", "surrogateescape"))
        before = snapshot(folder)
        fails_with_one_line(capsys, ["report", str(folder)], str(path))
        assert snapshot(folder) == before


SWEEP_JSON = {
    "empty": "",
    "garbage": "{",
    "a-list": "[]",
    "no-points": '{"name": "seeds", "headline": "test_nll_iw"}',
    "points-not-pairs": '{"name": "seeds", "headline": "test_nll_iw", "points": [1, 2]}',
    "a-point-outside": '{"name": "seeds", "headline": "test_nll_iw", "points": [["../../elsewhere", {}]]}',
    "a-missing-point": '{"name": "seeds", "headline": "test_nll_iw", "points": [["seed=7", {"seed": 7}]]}',
}


@pytest.mark.parametrize("case", sorted(SWEEP_JSON))
def test_a_damaged_sweep_json_is_one_line(sweep_copy, capsys, case):
    sweep_dir = sweep_copy / "runs" / "seeds"
    (sweep_dir / "sweep.json").write_text(SWEEP_JSON[case])
    before = snapshot(sweep_dir)
    expected = f"sweep {sweep_dir} is not finished" if case == "a-missing-point" else str(sweep_dir / "sweep.json")
    fails_with_one_line(capsys, ["report", str(sweep_dir)], expected)
    assert snapshot(sweep_dir) == before


@pytest.mark.parametrize("case", ["garbage", "incomplete", "wrong-type"])
def test_a_sweep_rerun_stops_at_a_damaged_finished_point_before_training(sweep_copy, capsys, no_figures, case):
    sweep_dir = sweep_copy / "runs" / "seeds"
    path = sweep_dir / "seed=1" / "metrics.json"
    _damage_metrics(path, case)
    (sweep_dir / "seed=0" / "metrics.json").unlink()  # a point left to run: it must not be trained
    before = snapshot(sweep_dir)
    fails_with_one_line(capsys, ["sweep", str(sweep_copy / "sweep.yaml"), "--out", str(sweep_copy / "runs")], str(path))
    assert snapshot(sweep_dir) == before


@pytest.mark.parametrize("damage", ["another-latent-size", "no-rng"])
def test_a_sweep_rerun_resuming_a_point_with_a_foreign_checkpoint_is_one_line(sweep_copy, capsys, no_figures, damage):
    point = sweep_copy / "runs" / "seeds" / "seed=1"
    _edit(point, CHECKPOINTS[damage][0])
    (point / "metrics.json").unlink()
    argv = ["sweep", str(sweep_copy / "sweep.yaml"), "--out", str(sweep_copy / "runs")]
    fails_with_one_line(capsys, argv, str(point / "checkpoint.pt"))
