"""Faults real runs meet: SIGKILL at random moments, crafted checkpoints, escaping names."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from vaezoo.cli.main import main

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
TIMINGS = {"train_seconds", "train_images_per_second", "iw_seconds", "phase_seconds"}
KILL_TRIALS = 4


def cli(root: Path, *args: str) -> subprocess.Popen:
    """vaezoo in its own process, with the synthetic dataset registered; no test here looks at figures."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.synthetic_cli", str(root), "--no-figures", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | {"MPLBACKEND": "Agg"},
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()


def without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def assert_same_result(resumed: dict, reference: dict, note: object) -> None:
    """Training resumes bit for bit; evaluation sums may run in another order (a loaded machine's BLAS
    takes other thread counts), so floats are held to 1e-9 relative and everything else exactly."""
    a, b = without_timings(resumed), without_timings(reference)
    assert a.keys() == b.keys(), note
    for key, value in a.items():
        floats = isinstance(value, float) or (isinstance(value, list) and value and isinstance(value[0], float))
        expected = pytest.approx(b[key], rel=1e-9, abs=1e-12) if floats else b[key]
        assert value == expected, (key, note)


@pytest.mark.slow  # real processes killed for minutes: .ci/run runs the slow tests as their own step
def test_sigkill_a_run_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path, synthetic_root):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=25)))
    start = time.perf_counter()
    finish(cli(synthetic_root, "run", str(spec), "--out", str(tmp_path / "reference"), "--quiet"))
    full = time.perf_counter() - start
    reference = json.loads((tmp_path / "reference" / "tiny" / "metrics.json").read_text())
    rng = random.Random(0)
    moments = []
    for trial in range(KILL_TRIALS):
        out = tmp_path / f"trial{trial}"
        process = cli(synthetic_root, "run", str(spec), "--out", str(out), "--quiet")
        moment = rng.uniform(0.3, 1.0) * full
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        run_dir = out / "tiny"
        moments.append((round(moment, 2), sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else []))
        if run_dir.exists():
            assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp") and not p.name.startswith(".")]
        finish(cli(synthetic_root, "run", str(spec), "--out", str(out), "--resume", "--quiet"))
        resumed = json.loads((run_dir / "metrics.json").read_text())
        assert_same_result(resumed, reference, moments[-1])
        assert not list(run_dir.glob(".*.tmp")), "resume leaves no stale temporary file"
    print("kill moments (s) and what the run folder held:", moments)


@pytest.mark.slow  # real processes killed for minutes: .ci/run runs the slow tests as their own step
def test_sigkill_a_sweep_then_rerun_keeps_every_finished_point(tmp_path, synthetic_root):
    sweep = tmp_path / "sweep.yaml"
    base = tiny_spec(synthetic_root, train__epochs=6)
    sweep.write_text(yaml.safe_dump({"name": "abl", "base": base, "grid": {"kl.beta": [0.5, 1.0, 2.0, 4.0]}}))
    out = tmp_path / "runs"
    process = cli(synthetic_root, "sweep", str(sweep), "--out", str(out))
    sweep_dir = out / "abl"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(sweep_dir.glob("*/metrics.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.parent.name: p.read_bytes() for p in sweep_dir.glob("*/metrics.json")}
    assert 2 <= len(finished) < 4
    rerun = cli(synthetic_root, "sweep", str(sweep), "--out", str(out))
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert f"{len(finished)} already finished, {4 - len(finished)} to run" in err.decode()
    for name, content in finished.items():
        assert (sweep_dir / name / "metrics.json").read_bytes() == content  # kept, not retrained
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 4 and (sweep_dir / "results.csv").exists()


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["figures", "resume"])
def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path, synthetic_root, capsys, no_figures, command):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=1)))
    out = tmp_path / "runs"
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "tiny"
    if command == "resume":
        (run_dir / "metrics.json").unlink()
    marker = tmp_path / "pwned"
    (run_dir / "checkpoint.pt").write_bytes(pickle.dumps({"model": Exploit(marker)}, protocol=2))
    capsys.readouterr()
    argv = ["figures", str(run_dir)] if command == "figures" else ["run", str(spec), "--out", str(out), "--resume"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../x", "/tmp/abs", "..", "a/../../b"])
def test_a_run_name_that_escapes_the_output_folder_is_refused(tmp_path, synthetic_root, capsys, name):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root)))
    assert main(["run", str(spec), "--set", f"name={name}", "--out", str(tmp_path / "runs")]) == 2
    assert "name: String should match pattern" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()
