"""Sweeps that could not finish: every shape of sweep (seeds only, one point, grid only, variants only)
gets its report, and duplicate points are refused at load time, naming both."""

import csv
import json
import shutil

import pytest
import yaml

from tests.conftest import tiny_spec
from tests.reliability.conftest import fails_with_one_line
from vaezoo.cli.main import main
from vaezoo.core.errors import SpecError
from vaezoo.sweeps.grid import load_sweep

pytestmark = pytest.mark.reliability

SHAPES = {
    "seeds-only": {"seeds": [0, 1]},
    "one-seed": {"seeds": [3]},
    "single-point": {},
    "grid-only": {"grid": {"kl.beta": [0.5, 2.0]}},
    "two-grid-keys": {"grid": {"kl.beta": [0.5, 2.0], "train.lr": [1e-3, 2e-3]}},
    "variants-only": {"variants": [{"name": "a", "set": {"kl.beta": 0.5}}, {"name": "b"}]},
    "grid-and-seeds": {"grid": {"kl.beta": [0.5, 2.0]}, "seeds": [0, 1]},
    "variants-and-seeds": {"variants": [{"name": "a"}, {"name": "b", "set": {"kl.beta": 2.0}}], "seeds": [0, 1]},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_of_sweep_gets_its_report(tmp_path, synthetic_root, trained, capsys, shape):
    """The report of each shape, built from saved runs (copies of one trained run, as `vaezoo report` reads them)."""
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": tiny_spec(synthetic_root)} | SHAPES[shape]))
    sweep, points = load_sweep(path)
    sweep_dir = tmp_path / "runs" / "s"
    for point in points:
        shutil.copytree(trained / "runs" / "tiny", sweep_dir / point.name)
    manifest = {"name": sweep.name, "headline": sweep.headline, "points": [[p.name, p.varied] for p in points]}
    (sweep_dir / "sweep.json").write_text(json.dumps(manifest))
    assert main(["report", str(sweep_dir)]) == 0, capsys.readouterr().err
    with (sweep_dir / "results.csv").open() as handle:
        assert [row["run"] for row in csv.DictReader(handle)] == [p.name for p in points]
    assert "## Results" in (sweep_dir / "report.md").read_text()
    assert (sweep_dir / "report.pdf").stat().st_size > 0


def test_a_seed_only_sweep_trains_every_point_and_reports(trained_sweep):
    """The sweep that used to crash writing its report (KeyError: 'run') after training every point."""
    sweep_dir = trained_sweep / "runs" / "seeds"
    table = (sweep_dir / "results.md").read_text()
    assert "seed=0, seed=1" in table and "±" in table
    assert (sweep_dir / "report.pdf").exists() and (sweep_dir / "report.html").exists()


DUPLICATES = {
    "repeated-seed": ({"seeds": [0, 0]}, ["000_seed=0", "001_seed=0"]),
    "int-and-float": ({"grid": {"kl.beta": [1, 1.0]}}, ["beta=1", "beta=1.0"]),
    "repeated-grid-value": ({"grid": {"train.lr": [0.001, 0.002, 0.001]}}, ["000_lr=0.001", "002_lr=0.001"]),
    "exponent-and-decimal": ({"grid": {"train.lr": ["1e-3", 0.001]}}, ["000_lr=0.001", "001_lr=0.001"]),
    "mappings-in-another-order": (
        {"grid": {"model.encoder": [{"kind": "mlp", "hidden": [32]}, {"hidden": [32], "kind": "mlp"}]}},
        ["encoder=mlp-32", "encoder=32-mlp"],
    ),
    "variants-that-set-the-same": (
        {"variants": [{"name": "a", "set": {"kl.beta": 2.0}}, {"name": "b", "set": {"kl.beta": 2}}]},
        ["points a and b"],
    ),
    "variant-that-sets-the-base": (
        {"variants": [{"name": "plain"}, {"name": "same", "set": {"seed": 0}}]},
        ["plain", "same"],
    ),
    "grid-overrides-a-variant": (
        {"variants": [{"name": "plain"}, {"name": "beta2", "set": {"kl.beta": 2.0}}], "grid": {"kl.beta": [1.0, 2.0]}},
        ["plain_beta=1.0", "beta2_beta=1.0"],
    ),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_points_are_refused_naming_both(tmp_path, synthetic_root, case):
    changes, names = DUPLICATES[case]
    path = tmp_path / "sweep.yaml"
    text = yaml.safe_dump({"name": "s", "base": tiny_spec(synthetic_root)} | changes, sort_keys=False)
    path.write_text(text.replace("'1e-3'", "1e-3"))  # a YAML number, as a user would write it
    with pytest.raises(SpecError, match="are the same run") as caught:
        load_sweep(path)
    message = str(caught.value)
    assert "\n" not in message and all(name in message for name in names), message


def test_an_override_that_makes_points_equal_is_refused_before_anything_is_written(tmp_path, synthetic_root, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": tiny_spec(synthetic_root), "grid": {"kl.beta": [0.5, 2.0]}}))
    out = tmp_path / "runs"
    argv = ["sweep", str(path), "--set", "kl.beta=1.0", "--out", str(out)]
    fails_with_one_line(capsys, argv, "points beta=0.5 and beta=2.0 are the same run")
    assert not out.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"seeds": [0, 1]},
        {"grid": {"kl.beta": [1, 2]}},
        {"variants": [{"name": "a"}, {"name": "b", "set": {"seed": 1}}]},
    ],
)
def test_distinct_points_are_accepted(tmp_path, synthetic_root, changes):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": tiny_spec(synthetic_root)} | changes))
    assert len(load_sweep(path)[1]) == 2
