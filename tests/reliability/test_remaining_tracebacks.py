"""What used to end in a traceback is one line at status 2, with nothing written: a sweep of 10^8 points,
unknown sweep keys, seeds beyond 2^63, a plugin that registers a kind vaezoo has, /dev/zero as a run's
spec.yaml; and `vaezoo eval` leaves metrics.json as it was when its report fails."""

import os
import sys

import pytest
import yaml

from tests.conftest import tiny_spec
from tests.reliability.conftest import fails_with_one_line, snapshot
from vaezoo.core.errors import OutputError
from vaezoo.parts import ENCODERS

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (
            {"grid": {"seed": list(range(10**4)), "train.lr": [0.001 * (i + 1) for i in range(10**4)]}},
            "100000000 points",
        ),
        ({"grid": {"seed": list(range(101)), "model.latent_dim": list(range(1, 101))}}, "10100 points"),
        ({"seeds": list(range(20000))}, "20000 points"),
        ({"points": []}, "points"),
        ({"grid": {"seed": []}}, "no values"),
        ({"seeds": [2**70]}, "less than or equal to"),
    ],
)
def test_a_hostile_sweep_is_one_line_and_writes_nothing(tmp_path, synthetic_root, capsys, changes, text):
    sweep = {"name": "big", "base": tiny_spec(synthetic_root, train__epochs=1)} | changes
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    fails_with_one_line(capsys, ["sweep", str(path), "--out", str(tmp_path / "runs")], text)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("seed", [str(2**70), "-1", "1e30", "nan"])
def test_an_out_of_range_seed_is_one_line(tmp_path, synthetic_root, capsys, seed):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(synthetic_root)))
    fails_with_one_line(capsys, ["run", str(path), "--out", str(tmp_path / "runs"), "--set", f"seed={seed}"], "seed")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("registry", ["ENCODERS", "DECODERS", "PRIORS"])
def test_a_plugin_that_registers_a_kind_vaezoo_has_is_one_line(tmp_path, monkeypatch, capsys, registry):
    name = f"clashing_plugin_{registry.lower()}"
    (tmp_path / f"{name}.py").write_text(
        f"from vaezoo.parts import {registry}\n\n@{registry}.register('mlp' if '{registry}' != 'PRIORS' else 'standard')\n"
        "class Mine:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("VAEZOO_PLUGINS", name)
    before = ENCODERS.get("mlp")
    fails_with_one_line(capsys, ["list"], "VAEZOO_PLUGINS", name, "already registered")
    assert ENCODERS.get("mlp") is before
    sys.modules.pop(name, None)


@pytest.mark.parametrize("command", ["report", "eval", "figures", "resume"])
def test_dev_zero_as_a_runs_spec_yaml_is_one_line(run_copy, capsys, command):
    run_dir = run_copy / "runs" / "tiny"
    (run_dir / "spec.yaml").unlink()
    os.symlink("/dev/zero", run_dir / "spec.yaml")
    before = snapshot(run_dir.parent)
    if command == "resume":
        argv = ["run", str(run_copy / "spec.yaml"), "--out", str(run_copy / "runs"), "--resume", "--quiet"]
    else:
        argv = [command, str(run_dir)]
    fails_with_one_line(capsys, argv, "spec.yaml is not a regular file")
    assert (run_dir / "spec.yaml").is_symlink() and snapshot(run_dir.parent) == before


def test_eval_keeps_metrics_json_when_its_report_fails(run_copy, capsys, monkeypatch):
    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)

    def no_report(*args, **kwargs):
        raise OutputError(f"{run_dir / 'report.pdf'}: No space left on device")

    monkeypatch.setattr("vaezoo.runs.saved_runs.write_run_report", no_report)
    fails_with_one_line(capsys, ["eval", str(run_dir), "--iw-samples", "4"], "No space left")
    assert snapshot(run_dir) == before
