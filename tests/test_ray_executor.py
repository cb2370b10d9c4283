"""`vaezoo sweep --executor ray` against a real Ray head started on 127.0.0.1 by these tests: the same
numbers as the local executor, a killed worker's point retried to a complete sweep, and a re-run
that trains nothing. The head needs the `ray` extra; `.ci/run` runs these in their own step."""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from vaezoo.cli.main import main

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 400  # long enough (seconds per point, on an idle machine) to catch a point mid-training


def sweep_file(tmp_path: Path, root: Path, epochs: int = 3) -> Path:
    base = tiny_spec(root, train={"epochs": epochs, "batch_size": 32, "lr": 1e-3, "device": "cpu"})
    sweep = {"name": "grid", "base": base, "grid": {"kl.beta": [0.5, 1.0], "model.latent_dim": [2, 4]}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def plugin_env(root: Path) -> dict[str, str]:
    """What lets a Ray worker import the tests' synthetic dataset (VAEZOO_* reach tasks through the driver)."""
    return {"VAEZOO_PLUGINS": "tests.synthetic_plugin", "VAEZOO_SYNTHETIC_ROOT": str(root), "PYTHONPATH": str(REPO)}


def test_without_ray_the_executor_is_one_line_naming_the_extra(tmp_path, synthetic_root, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file(tmp_path, synthetic_root)), "--out", str(out), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'vaezoo: error: --executor ray needs Ray: pip install "vaezoo[ray]"'
    assert not out.exists()  # refused before anything was written


def test_an_unknown_executor_is_one_line(tmp_path, synthetic_root, capsys):
    assert main(["sweep", str(sweep_file(tmp_path, synthetic_root)), "--executor", "slurm"]) == 2
    assert "unknown executor 'slurm'; known: local, ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ray_head(synthetic_root):
    """A Ray head with 2 CPUs and token authentication, its workers able to import the tests; stopped
    afterwards. Yields (address, the environment a driver needs: the token)."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = os.environ | plugin_env(synthetic_root) | auth | {"RAY_USAGE_STATS_ENABLED": "0"}
    start = [str(ray_bin), "start", "--head", "--port=0", "--num-cpus=2", "--node-ip-address=127.0.0.1"]
    started = subprocess.run(
        [*start, "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    address = re.search(r"--address='([^']+)'", started.stdout + started.stderr).group(1)
    yield address, auth
    subprocess.run([str(ray_bin), "stop", "--force"], check=False, capture_output=True, timeout=120)
    shutil.rmtree(temp, ignore_errors=True)


def sweep_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.synthetic_cli", str(root), "--no-figures", "sweep", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | plugin_env(root) | (env or {}) | {"MPLBACKEND": "Agg", "COLUMNS": "200"},
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return err


def results(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if "second" not in k} for row in rows]  # timings aside


@pytest.mark.ray
def test_a_ray_sweep_gives_the_local_numbers_and_a_rerun_trains_nothing(tmp_path, synthetic_root, ray_head):
    path = sweep_file(tmp_path, synthetic_root)
    finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "local"), "--jobs", "2"))
    on_ray = ("--executor", "ray", "--address", ray_head[0])
    finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "ray"), *on_ray, env=ray_head[1]))
    local, ray = results(tmp_path / "local" / "grid"), results(tmp_path / "ray" / "grid")
    assert len(ray) == 4 and ray == local

    checkpoints = sorted((tmp_path / "ray" / "grid").glob("*/checkpoint.pt"))
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    err = finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "ray"), *on_ray, env=ray_head[1]))
    assert "4 already finished, 0 to run" in err
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps and len(stamps) == 4


def point_workers() -> dict[int, str]:
    """pid -> title of the Ray workers running a vaezoo point (Ray titles them ray::<task name>)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], check=True, capture_output=True, text=True).stdout
    return {
        int(pid): title
        for pid, title in (line.strip().split(None, 1) for line in listing.splitlines() if "ray::vaezoo:" in line)
    }


@pytest.mark.ray
def test_a_killed_worker_is_retried_and_the_sweep_completes(tmp_path, synthetic_root, ray_head):
    path = sweep_file(tmp_path, synthetic_root, epochs=EPOCHS)
    sweep_dir = tmp_path / "out" / "grid"
    driver = sweep_cli(
        synthetic_root,
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--executor",
        "ray",
        "--address",
        ray_head[0],
        env=ray_head[1],
    )
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline and driver.poll() is None:
        # a point with a checkpoint on the driver's side, still running: kill the worker training it
        for pid, title in point_workers().items():
            name = title.split("/", 1)[-1].split()[0]
            if (sweep_dir / name / "checkpoint.pt").exists() and not (sweep_dir / name / "metrics.json").exists():
                os.kill(pid, signal.SIGKILL)
                victim = name
                break
        time.sleep(0.2)
    assert victim is not None, "no point was caught mid-training"
    err = finish(driver)
    print(f"killed the worker of {victim}; driver said:\n{err}")
    assert f"running  {victim} (attempt 2, after its worker died)" in err
    assert len(results(sweep_dir)) == 4
    history = (sweep_dir / victim / "history.jsonl").read_text().splitlines()
    assert [int(yaml.safe_load(row)["epoch"]) for row in history] == list(range(1, EPOCHS + 1))


@pytest.mark.ray
def test_with_a_shared_folder_tasks_write_the_sweep_in_place(tmp_path, synthetic_root, ray_head):
    path = sweep_file(tmp_path, synthetic_root)
    on_ray = ("--executor", "ray", "--address", ray_head[0], "--shared")
    finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "shared"), *on_ray, env=ray_head[1]))
    finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "local"), "--jobs", "2"))  # 1 thread each
    assert results(tmp_path / "shared" / "grid") == results(tmp_path / "local" / "grid")


@pytest.mark.ray
def test_a_stopped_driver_cancels_its_tasks_and_a_rerun_trains_only_what_is_missing(tmp_path, synthetic_root, ray_head):
    path = sweep_file(tmp_path, synthetic_root, epochs=EPOCHS)
    sweep_dir = tmp_path / "out" / "grid"
    on_ray = ("--executor", "ray", "--address", ray_head[0])
    driver = sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "out"), *on_ray, env=ray_head[1])
    deadline = time.monotonic() + 300
    while not list(sweep_dir.glob("*/checkpoint.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 143 and err.strip().splitlines()[-1] == "vaezoo: stopped by SIGTERM", err
    deadline = time.monotonic() + 60
    while point_workers() and time.monotonic() < deadline:  # Ray ends a job's tasks when its driver goes
        time.sleep(0.5)
    assert not point_workers()
    finished = {p.parent.name for p in sweep_dir.glob("*/metrics.json")}
    assert len(finished) < 4
    err = finish(sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "out"), *on_ray, env=ray_head[1]))
    assert f"{len(finished)} already finished, {4 - len(finished)} to run" in err
    assert len(results(sweep_dir)) == 4
    for history in sweep_dir.glob("*/history.jsonl"):
        assert [int(yaml.safe_load(row)["epoch"]) for row in history.read_text().splitlines()] == list(
            range(1, EPOCHS + 1)
        )
