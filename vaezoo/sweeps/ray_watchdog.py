"""Stops the local Ray instance a sweep driver started, once that driver is gone without stopping it.

Ray ties most of a local instance's processes to the driver (the kernel kills them when it dies), but
not all: after a SIGKILL of the driver, the dashboard and runtime-env agents outlive it. The driver
starts `python vaezoo/sweeps/ray_watchdog.py DRIVER_PID SESSION_DIR` as its child, in a session of its own (a
Ctrl-C in the terminal reaches the driver, not the watchdog). When the watchdog's parent changes (the
driver died and it was reparented), it ends every process of that instance and exits. A driver that
stops normally shuts Ray down itself and then ends the watchdog.

A process belongs to the instance when its command line names the instance's session folder or it
holds a file open in it: every Ray process of a node logs there, and the folder's name (a timestamp and
the driver's pid) is this instance's alone, so a Ray cluster run elsewhere on the machine is untouched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL: agents flush their logs on SIGTERM


def instance_pids(session_dir: str, proc: Path = Path("/proc")) -> set[int]:
    """The processes (other than this one) whose command line or open files name `session_dir`."""
    session_dir = session_dir.rstrip("/")
    marker = session_dir.encode()
    found = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to inspect
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if any(arg == marker or marker + b"/" in arg or arg.endswith(b"=" + marker) for arg in args):
                found.add(int(entry.name))
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target == session_dir or target.startswith(session_dir + "/"):
                        found.add(int(entry.name))
                        break
    return found


def stop_instance(session_dir: str, grace: float = GRACE_SECONDS) -> set[int]:
    """SIGTERM the instance's processes, SIGKILL what is left after `grace` seconds; returns whom it signalled."""
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    while True:
        # scan again each round: a dying raylet may have started a worker meanwhile
        pids = instance_pids(session_dir)
        if not pids:
            return signalled
        late = time.monotonic() >= deadline
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL if late or pid in signalled else signal.SIGTERM)
        signalled |= pids
        if late and time.monotonic() >= deadline + grace:
            return signalled  # what survives SIGKILL this long is not ours to wait for
        time.sleep(0.2)


def start(session_dir: str) -> subprocess.Popen:
    """Start a watchdog for the local instance whose session folder is `session_dir`, parented by this process."""
    return subprocess.Popen(
        # this file by path, isolated: it needs only the standard library, not vaezoo's imports (torch)
        [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), session_dir],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the terminal's process group: Ctrl-C is the driver's to handle
    )


def stop(watchdog: subprocess.Popen) -> None:
    """End a watchdog whose driver shut its instance down itself."""
    watchdog.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=5)


def main(argv: list[str]) -> int:
    driver, session_dir = int(argv[0]), argv[1]
    # the parent, not os.kill(pid, 0): a reused pid cannot fool it, and the driver need not be waited for
    while os.getppid() == driver:
        time.sleep(POLL_SECONDS)
    stop_instance(session_dir)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # the driver stopped Ray itself: nothing to clean
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main(sys.argv[1:]))
