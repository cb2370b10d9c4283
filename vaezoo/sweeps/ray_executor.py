"""`vaezoo sweep --executor ray`: each sweep point is one Ray task; Ray places it (by the CPUs and
GPUs it declares) and reruns it when its worker or node dies. vaezoo schedules nothing itself.

No shared filesystem is assumed. A task trains in a scratch folder on its node; after every
checkpoint it sends the files a resume needs to a small store actor pinned to the driver's node,
which writes them into runs/<sweep>/<point>/; a rerun fetches them from there and resumes. The task
returns the finished folder's files and the driver writes them in place, metrics.json last, so a
point is finished exactly when it is for the local executor. With `--shared` (a path every node
sees) tasks write the sweep folder in place instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaezoo.core import io
from vaezoo.core.errors import VaezooError, first_line
from vaezoo.core.plugins import load_plugins
from vaezoo.evaluate.records import RunMetrics
from vaezoo.runs.lock import folder_lock, mark_folder
from vaezoo.runs.runner import run
from vaezoo.spec.experiment import ExperimentSpec
from vaezoo.sweeps import ray_watchdog
from vaezoo.sweeps.board import SweepBoard
from vaezoo.sweeps.grid import Point, SweepSpec
from vaezoo.sweeps.options import ExecutorOptions

#: What a rerun needs to resume: the checkpoint holds the history and scalars, the others are their views.
RESUME_FILES = ("spec.yaml", "checkpoint.pt", "history.jsonl", "scalars.csv")
FINISHED = "metrics.json"  # written last: its presence marks a run finished
POLL_SECONDS = 1.0


def require_ray() -> Any:
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise VaezooError('--executor ray needs Ray: pip install "vaezoo[ray]"') from None
    return ray


def folder_files(run_dir: Path, names: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """A run folder's files (or just `names`) as relative POSIX path -> bytes; hidden files (temporaries,
    the folder's lock) left out."""
    if names is not None:
        paths = [run_dir / name for name in names]
    else:
        paths = sorted(p for p in run_dir.rglob("*") if p.is_file())
    return {
        path.relative_to(run_dir).as_posix(): path.read_bytes()
        for path in paths
        if path.is_file() and not path.name.startswith(".")
    }


def write_folder_files(run_dir: Path, files: dict[str, bytes]) -> None:
    """Write files into run_dir, each atomically, metrics.json last."""
    for name in sorted(files, key=lambda name: name == FINISHED):
        path = run_dir / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise VaezooError(f"refused a file outside the run folder {run_dir}: {name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        io.atomic_write(path, lambda handle, data=files[name]: handle.write(data))
    if files:
        mark_folder(run_dir, "run")


class PointStore:
    """A Ray actor on the driver's node: each point's resume files, in the driver's sweep folder,
    and which points are running, at which attempt."""

    def __init__(self, sweep_dir: str) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.attempts: dict[str, int] = {}

    def begin(self, point: str) -> tuple[int, dict[str, bytes]]:
        """Count an attempt at `point`; returns its number and the files to resume from."""
        self.attempts[point] = self.attempts.get(point, 0) + 1
        run_dir = self.sweep_dir / point
        return self.attempts[point], folder_files(run_dir, RESUME_FILES)

    def checkpoint(self, point: str, files: dict[str, bytes]) -> None:
        write_folder_files(self.sweep_dir / point, files)

    def started(self) -> dict[str, int]:
        """point -> attempts so far, for the points that have started."""
        return dict(self.attempts)


@dataclass(frozen=True)
class PointOutcome:
    """What a task returns: its attempt number, the metrics, and the run folder's files (None when
    the task wrote the shared folder in place)."""

    attempt: int
    metrics: RunMetrics
    files: dict[str, bytes] | None


def run_attempt(spec: ExperimentSpec, store: Any, shared_dir: str | None, figures: bool) -> PointOutcome:
    """One attempt at a point, in a Ray worker: resume from what the store holds, train, evaluate."""
    ray = require_ray()
    load_plugins()
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    attempt, files = ray.get(store.begin.remote(spec.name))
    if shared_dir is not None:
        return PointOutcome(attempt, run(spec, Path(shared_dir), resume=True, figures=figures), None)
    remove_stale_scratch()
    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, ignore_cleanup_errors=True) as scratch,
        folder_lock(Path(scratch), "scratch folder"),
    ):
        run_dir = Path(scratch) / spec.name
        write_folder_files(run_dir, files)

        def send(folder: Path) -> None:
            ray.get(store.checkpoint.remote(spec.name, folder_files(folder, RESUME_FILES)))

        metrics = run(spec, Path(scratch), resume=True, figures=figures, on_checkpoint=send)
        return PointOutcome(attempt, metrics, folder_files(run_dir))


SCRATCH_PREFIX = "vaezoo-point-"
SCRATCH_GRACE_SECONDS = 60.0


def remove_stale_scratch(root: Path | None = None) -> list[Path]:
    """Delete the scratch folders that killed tasks left in `root` (the temporary folder): those whose lock
    no live task holds. Returns what was removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        if folder.is_symlink() or not folder.is_dir() or time.time() - folder.stat().st_mtime < SCRATCH_GRACE_SECONDS:
            continue  # a task may have just made it and not yet taken its lock
        with contextlib.suppress(VaezooError, OSError), folder_lock(folder, "scratch folder"):
            shutil.rmtree(folder)  # under its lock: no task can be using it
            removed.append(folder)
    return removed


#: how long a head's address may take to accept a connection before the sweep gives up
CONNECT_SECONDS = 10.0


def check_reachable(address: str | None, seconds: float = CONNECT_SECONDS) -> None:
    """VaezooError (one line) unless a `host:port` address accepts a TCP connection within `seconds`;
    other forms (none, "auto", "ray://...") are left to Ray."""
    match = re.fullmatch(r"\[?([\w.:-]+?)\]?:(\d{1,5})", address or "")
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except (OSError, ValueError, OverflowError) as error:
        reason = getattr(error, "strerror", None) or first_line(error)
        raise VaezooError(f"cannot reach the Ray head at {address} within {seconds:g} s: {reason}") from None


class RayExecutor:
    """Submits every unfinished point as a Ray task and writes their folders as they finish."""

    def __init__(self, options: ExecutorOptions) -> None:
        self.ray = require_ray()
        self.options = options
        check_reachable(options.address)  # before the sweep writes anything: ray.init would retry for minutes

    def __call__(self, sweep: SweepSpec, todo: list[Point], sweep_dir: Path, board: SweepBoard, figures: bool) -> None:
        if not todo:
            return
        ray = self.ray
        # the driver's VAEZOO_* settings (data root, plugins) hold in every task, on any node
        env = {key: value for key, value in os.environ.items() if key.startswith("VAEZOO_")}
        handler = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(
                address=self.options.address,
                runtime_env={"env_vars": env},
                logging_level="ERROR",
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.options.address or "a local instance"
            raise VaezooError(f"cannot start or join Ray at {where}: {first_line(error)}") from None
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)  # ray.init takes SIGTERM over; the CLI's handler stops cleanly
        session_dir, watchdog = _own_session_dir(ray), None
        try:
            if session_dir is not None:  # a SIGKILLed driver cannot stop the instance it started: the watchdog does
                watchdog = ray_watchdog.start(session_dir)
            self._run(sweep, todo, sweep_dir.resolve(), board, figures)
        finally:
            ray.shutdown()  # a stopped driver takes its job's tasks and actors with it
            if watchdog is not None:
                ray_watchdog.stop(watchdog)

    def _run(self, sweep: SweepSpec, todo: list[Point], sweep_dir: Path, board: SweepBoard, figures: bool) -> None:
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        store = ray.remote(PointStore).options(num_cpus=0, scheduling_strategy=here).remote(str(sweep_dir))
        task = ray.remote(run_attempt)
        shared = str(sweep_dir) if self.options.shared else None
        with contextlib.ExitStack() as held:
            if shared is None:  # tasks train in scratch folders: the driver holds each point's folder for them
                for point in todo:
                    held.enter_context(folder_lock(sweep_dir / point.name, create=True))
            self._submit(sweep, todo, sweep_dir, board, figures, store, task, shared)

    def _submit(
        self, sweep: SweepSpec, todo: list[Point], sweep_dir: Path, board: SweepBoard, figures: bool,
        store: Any, task: Any, shared: str | None,
    ) -> None:  # fmt: skip
        refs = {}
        for point in todo:
            cuda = point.spec.train.device.startswith("cuda")
            options = task.options(
                name=f"vaezoo:{sweep.name}/{point.name}",
                num_cpus=sweep.resources.cpus,
                num_gpus=sweep.resources.gpus if cuda else 0,
                max_retries=sweep.resources.retries,
                retry_exceptions=False,  # a point's own error (divergence, bad data) is not a lost worker
            )
            refs[options.remote(point.spec, store, shared, figures)] = point
        failures = self._collect(refs, store, sweep_dir, board)
        if failures:
            raise VaezooError(f"{len(failures)} of {len(todo)} points failed: " + "; ".join(failures))

    def _collect(self, refs: dict[Any, Point], store: Any, sweep_dir: Path, board: SweepBoard) -> list[str]:
        ray = self.ray
        pending, failures = list(refs), []
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
                for name, attempt in ray.get(store.started.remote()).items():  # before `ready`: a quick retry shows
                    board.running(name, attempt)
                for ref in ready:
                    point = refs[ref]
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        reason = _reason(error)
                        failures.append(f"{point.name}: {reason}")
                        board.failed(point.name, reason)
                        continue
                    if outcome.files is not None:
                        write_folder_files(sweep_dir / point.name, outcome.files)
                    board.finished(point.name, outcome.metrics, outcome.attempt)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return failures


def _own_session_dir(ray: Any) -> str | None:
    """The session folder of the local instance this driver started, or None when it joined a cluster
    (someone else's to stop) or Ray's internals do not say."""
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    if node is None or not getattr(node, "head", False):  # joined: connect_only nodes are not heads
        return None
    try:
        return str(node.get_session_dir_path())
    except (AttributeError, OSError):  # a private API: without it the sweep still runs, only unwatched
        return None


def _reason(error: Exception) -> str:
    """One line for a failed task: the point's own error message, or how its worker was lost."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, VaezooError):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {first_line(cause)}"
    return f"{type(error).__name__}: {first_line(error)}"
