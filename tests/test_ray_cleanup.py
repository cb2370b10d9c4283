"""A SIGKILLed `vaezoo sweep --executor ray` leaves none of the local Ray instance it started running:
its watchdog (vaezoo/sweeps/ray_watchdog.py) stops what Ray's own fate sharing misses (the agents)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_ray_executor import EPOCHS, sweep_cli, sweep_file
from vaezoo.sweeps.ray_watchdog import instance_pids

#: Ray's agents outlive a killed driver by tens of seconds on their own; the watchdog takes a few
GONE_WITHIN_SECONDS = 10.0


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root`."""
    listing = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="], check=True, capture_output=True, text=True
    ).stdout
    rows = [line.split(None, 2) for line in listing.splitlines()]
    children: dict[int, list[tuple[int, str]]] = {}
    for pid, ppid, *args in rows:
        children.setdefault(int(ppid), []).append((int(pid), args[0] if args else ""))
    found, todo = {}, [root]
    while todo:
        for pid, args in children.get(todo.pop(), []):
            found[pid] = args
            todo.append(pid)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` is running (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.ray
def test_a_sigkilled_driver_leaves_no_process_of_its_local_instance(tmp_path, synthetic_root):
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    # RAY_TMPDIR: this instance's own folder, so the driver neither joins nor is confused with another instance
    env = {"RAY_TMPDIR": str(temp), "RAY_USAGE_STATS_ENABLED": "0"}
    path = sweep_file(tmp_path, synthetic_root, epochs=EPOCHS)
    driver = sweep_cli(synthetic_root, str(path), "--out", str(tmp_path / "out"), "--executor", "ray", env=env)
    instance: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while driver.poll() is None and time.monotonic() < deadline:
            instance = descendants(driver.pid)
            if any("ray::vaezoo:" in args for args in instance.values()):  # a point is training
                break
            time.sleep(0.2)
        assert any("ray::vaezoo:" in args for args in instance.values()), driver.communicate(timeout=60)[1]
        instance = descendants(driver.pid)  # everything the instance runs now, the watchdog included
        names = " ".join(instance.values())
        assert "raylet" in names and "gcs_server" in names and "ray_watchdog.py" in names, names

        driver.kill()
        driver.wait(timeout=30)
        killed = time.monotonic()
        while any(alive(pid) for pid in instance) and time.monotonic() < killed + GONE_WITHIN_SECONDS:
            time.sleep(0.2)
        left = {pid: args for pid, args in instance.items() if alive(pid)}
        print(f"the instance was gone {time.monotonic() - killed:.1f} s after the driver's SIGKILL")
        assert not left, f"left running {GONE_WITHIN_SECONDS:g} s after the driver's SIGKILL: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
        for pid in instance:  # only what this test's driver started
            if alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_the_watchdog_picks_only_the_processes_naming_its_session_folder(tmp_path):
    session = tmp_path / "session_1"
    (session / "logs").mkdir(parents=True)
    (tmp_path / "session_10").mkdir()
    wait = [sys.executable, "-c", "import time; time.sleep(60)"]
    spawn = [
        [*wait, f"--session-dir={session}"],  # named on the command line
        ["bash", "-c", 'exec 3>>"$LOG"; exec sleep 60'],  # a log held open, the path in no argument
        [*wait, f"--session-dir={tmp_path / 'session_10'}"],  # another instance, one character longer
    ]
    env = os.environ | {"LOG": str(session / "logs" / "agent.log")}
    processes = [subprocess.Popen(args, env=env) for args in spawn]
    try:
        deadline = time.monotonic() + 10
        while instance_pids(str(session)) != {p.pid for p in processes[:2]} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert instance_pids(str(session)) == {p.pid for p in processes[:2]}
    finally:
        for process in processes:
            process.kill()
            process.wait()
