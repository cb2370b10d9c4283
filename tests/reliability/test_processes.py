"""Processes against each other and against signals: a run folder has one writer at a time, a
stopped sweep stops its workers (no orphans), a lost worker is one line, and what a resume relies on
is rebuilt from the checkpoint. Real processes and real signals throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from vaezoo.runs.lock import folder_lock

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # real processes for seconds each: .ci/run's slow step

REPO = Path(__file__).resolve().parents[2]


def cli(root: Path, *args: str) -> subprocess.Popen:
    """vaezoo in its own process on the synthetic dataset (which spawned workers import as a plugin)."""
    env = os.environ | {
        "MPLBACKEND": "Agg",
        "VAEZOO_PLUGINS": "tests.synthetic_plugin",
        "VAEZOO_SYNTHETIC_ROOT": str(root),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.synthetic_cli", str(root), "--no-figures", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def outcome(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def wait_for(condition, timeout: float = 120, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """The live descendants of `pid` (from /proc)."""
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with_children = task / "children"
            if with_children.exists():
                kids = {int(c) for c in with_children.read_text().split()}
                frontier.extend(kids - found)
                found |= kids
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        try:
            state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        if "Z" not in state.split()[1]:
            running.add(pid)
    return running


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("vaezoo: "), err
    assert "Traceback" not in err, err
    return lines[-1]


def long_spec(tmp_path: Path, root: Path, epochs: int = 3000) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(root, train__epochs=epochs)))
    return path


def sweep_file(tmp_path: Path, root: Path, epochs: int = 3000, betas: int = 4) -> Path:
    base = tiny_spec(root, train__epochs=epochs)
    path = tmp_path / "sweep.yaml"
    grid = {"kl.beta": [0.5 * (i + 1) for i in range(betas)]}
    path.write_text(yaml.safe_dump({"name": "abl", "base": base, "grid": grid}))
    return path


# --- class 2: a run folder has one owner ---------------------------------------------------------


@pytest.mark.parametrize("second", ["resume", "eval", "figures", "report", "fresh"])
def test_a_second_process_on_a_busy_run_folder_is_one_line_and_harms_nothing(tmp_path, synthetic_root, second):
    spec, out = long_spec(tmp_path, synthetic_root), tmp_path / "runs"
    run_dir = out / "tiny"
    first = cli(synthetic_root, "run", str(spec), "--out", str(out), "--quiet")
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), what="the first checkpoint")
    argv = {
        "resume": ["run", str(spec), "--out", str(out), "--resume", "--quiet"],
        "fresh": ["run", str(spec), "--out", str(out), "--quiet"],
        "eval": ["eval", str(run_dir)],
        "figures": ["figures", str(run_dir)],
        "report": ["report", str(run_dir)],
    }[second]
    code, err = outcome(cli(synthetic_root, *argv))
    assert code == 2
    line = one_line(err)
    assert "busy" in line or "already exists" in line or "not finished" in line, line
    assert first.poll() is None, "the first writer was harmed"
    before = json.loads((run_dir / "history.jsonl").read_text().splitlines()[-1])["epoch"]
    wait_for(lambda: json.loads((run_dir / "history.jsonl").read_text().splitlines()[-1])["epoch"] > before)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (run_dir / "metrics.json").exists()


def test_a_lock_held_by_this_process_makes_a_resume_elsewhere_busy(tmp_path, synthetic_root):
    spec, out = long_spec(tmp_path, synthetic_root, epochs=2), tmp_path / "runs"
    (out / "tiny").mkdir(parents=True)
    with folder_lock(out / "tiny"):
        code, err = outcome(cli(synthetic_root, "run", str(spec), "--out", str(out), "--resume", "--quiet"))
    assert code == 2 and f"(pid {os.getpid()})" in one_line(err)
    code, err = outcome(cli(synthetic_root, "run", str(spec), "--out", str(out), "--resume", "--quiet"))
    assert code == 0, err  # released with its holder


@pytest.mark.parametrize("command", ["eval", "figures"])
def test_an_interrupted_run_is_not_evaluated_in_place_and_still_resumes(tmp_path, synthetic_root, command):
    spec, out = long_spec(tmp_path, synthetic_root, epochs=600), tmp_path / "runs"  # seconds: killed mid-way
    run_dir = out / "tiny"
    first = cli(synthetic_root, "run", str(spec), "--out", str(out), "--quiet")
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), what="the first checkpoint")
    first.send_signal(signal.SIGKILL)
    first.wait()
    code, err = outcome(cli(synthetic_root, command, str(run_dir)))
    assert code == 2 and "not finished" in one_line(err)
    assert not (run_dir / "metrics.json").exists()
    code, err = outcome(cli(synthetic_root, "run", str(spec), "--out", str(out), "--resume", "--quiet"))
    assert code == 0, err
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == 600


# --- class 3: a stopped sweep stops its workers ----------------------------------------------------


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)])
def test_a_stopped_sweep_leaves_no_worker_and_starts_no_queued_point(tmp_path, synthetic_root, sig, status):
    sweep, out = sweep_file(tmp_path, synthetic_root), tmp_path / "runs"
    driver = cli(synthetic_root, "sweep", str(sweep), "--out", str(out), "--jobs", "2")
    sweep_dir = out / "abl"
    wait_for(lambda: len(list(sweep_dir.glob("*/checkpoint.pt"))) >= 2, what="two points training")
    workers = children(driver.pid)
    assert len(workers) >= 2
    driver.send_signal(sig)
    code, err = outcome(driver, timeout=60)
    assert code == status, err
    if sig != signal.SIGKILL:
        assert one_line(err) in ("vaezoo: stopped by SIGTERM", "vaezoo: interrupted")
    wait_for(lambda: not alive(workers), timeout=10, what="the workers to exit")
    started = {p.parent.name for p in sweep_dir.glob("*/spec.yaml")}
    time.sleep(1.0)
    assert {p.parent.name for p in sweep_dir.glob("*/spec.yaml")} == started and len(started) == 2  # queue cancelled


def test_a_worker_killed_like_the_oom_killer_ends_the_sweep_in_one_line_and_a_rerun_finishes(tmp_path, synthetic_root):
    sweep, out = sweep_file(tmp_path, synthetic_root, epochs=200, betas=3), tmp_path / "runs"
    driver = cli(synthetic_root, "sweep", str(sweep), "--out", str(out), "--jobs", "2")
    sweep_dir = out / "abl"
    wait_for(lambda: len(list(sweep_dir.glob("*/checkpoint.pt"))) >= 1, what="a point training")
    workers = sorted(alive(children(driver.pid)))
    victim = next(pid for pid in workers if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text())
    os.kill(victim, signal.SIGKILL)
    code, err = outcome(driver, timeout=120)
    assert code == 2, err
    line = one_line(err)
    assert "worker process died" in line and "run the sweep again" in line
    wait_for(lambda: not alive(set(workers)), timeout=10, what="the other workers to exit")
    code, err = outcome(cli(synthetic_root, "sweep", str(sweep), "--out", str(out), "--jobs", "2"), timeout=600)
    assert code == 0, err
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 3


def test_two_sweeps_on_one_folder_the_second_is_busy(tmp_path, synthetic_root):
    sweep, out = sweep_file(tmp_path, synthetic_root, betas=2), tmp_path / "runs"
    first = cli(synthetic_root, "sweep", str(sweep), "--out", str(out))
    wait_for(lambda: len(list((out / "abl").glob("*/checkpoint.pt"))) >= 1, what="the first sweep training")
    code, err = outcome(cli(synthetic_root, "sweep", str(sweep), "--out", str(out)))
    assert code == 2 and "sweep folder" in one_line(err) and "busy" in one_line(err)
    first.send_signal(signal.SIGTERM)
    assert outcome(first, timeout=60)[0] == 143


# --- class 4: what a resume relies on comes from the checkpoint --------------------------------------


@pytest.mark.parametrize("damage", ["history-short", "history-gone", "scalars-short", "figure-temporary"])
def test_resume_rebuilds_what_a_kill_between_writes_left_behind(tmp_path, synthetic_root, damage):
    spec, out = long_spec(tmp_path, synthetic_root, epochs=6), tmp_path / "runs"
    run_dir = out / "tiny"
    code, err = outcome(cli(synthetic_root, "run", str(spec), "--out", str(out), "--quiet"))
    assert code == 0, err
    reference, scalars = (run_dir / "history.jsonl").read_text(), (run_dir / "scalars.csv").read_text()
    (run_dir / "metrics.json").unlink()  # as if killed after the last checkpoint, before the evaluation
    if damage == "history-short":
        (run_dir / "history.jsonl").write_text("".join(reference.splitlines(keepends=True)[:-1]))
    elif damage == "history-gone":
        (run_dir / "history.jsonl").unlink()
    elif damage == "scalars-short":
        lines = (run_dir / "scalars.csv").read_text().splitlines(keepends=True)
        (run_dir / "scalars.csv").write_text("".join(lines[:-3]))
    else:
        (run_dir / "figures").mkdir(exist_ok=True)
        (run_dir / "figures" / ".samples.png.x1y2.tmp").write_bytes(b"half a png")
    code, err = outcome(cli(synthetic_root, "run", str(spec), "--out", str(out), "--resume", "--quiet"))
    assert code == 0, err
    assert (run_dir / "history.jsonl").read_text() == reference
    assert (run_dir / "scalars.csv").read_text() == scalars
    assert not list(run_dir.rglob(".*.tmp"))
