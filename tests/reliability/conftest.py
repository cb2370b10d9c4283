"""Shared by the reliability tests: a finished run and a finished sweep, trained once per session and copied
for each test that damages them, and the check that a command failed with one line and status 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from vaezoo.cli.main import main
from vaezoo.runs import runner
from vaezoo.spec.experiment import load_spec
from vaezoo.sweeps import executors
from vaezoo.sweeps.grid import load_sweep


def fails_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """Run the CLI in this process: it must exit 2 with one `vaezoo: error:` line holding every `expected`
    (a sweep prints its progress to stderr first: there the error is the last line)."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err and sum(line.startswith("vaezoo: error: ") for line in lines) == 1, err
    assert lines[-1].startswith("vaezoo: error: ") and (len(lines) == 1 or argv[0] == "sweep"), err
    for text in expected:
        assert text in lines[-1], (text, lines[-1])
    return lines[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: what a failed command must leave exactly as it was
    (the folder lock aside: taking it writes the holder's pid)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def no_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """A finished tiny run (one epoch, no figures): its spec file is trained/spec.yaml, the run trained/runs/tiny."""
    base = tmp_path_factory.mktemp("trained")
    spec_path = base / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=1)))
    runner.run(load_spec(spec_path), base / "runs", figures=False)
    return base


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished run's base folder (spec.yaml, runs/tiny) for a test to damage."""
    shutil.copytree(trained, tmp_path / "base")
    return tmp_path / "base"


@pytest.fixture(scope="session")
def trained_sweep(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """A finished two-point sweep (seeds only; no figures): sweep file base/sweep.yaml, folder base/runs/seeds."""
    base = tmp_path_factory.mktemp("sweep")
    path = base / "sweep.yaml"
    path.write_text(
        yaml.safe_dump({"name": "seeds", "base": tiny_spec(synthetic_root, train__epochs=1), "seeds": [0, 1]})
    )
    executors.run_sweep(*load_sweep(path), base / "runs", figures=False)
    return base


@pytest.fixture
def sweep_copy(trained_sweep: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained_sweep, tmp_path / "sweep")
    return tmp_path / "sweep"
