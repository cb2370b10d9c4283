"""Sweep executors: where a sweep's points run. `local` runs them in this process or a pool of local
processes; `ray` (vaezoo.sweeps.ray_executor) runs each as a Ray task. Either way finished points are
skipped, interrupted ones resume, and the sweep's tables, figures and report are built here."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import torch
from rich.console import Console

from vaezoo.core import io
from vaezoo.core.errors import OutputError, VaezooError
from vaezoo.core.plugins import load_plugins
from vaezoo.core.registry import Registry
from vaezoo.evaluate.records import RunMetrics, finished_metrics
from vaezoo.outputs.sweep_files import read_sweep
from vaezoo.outputs.sweep_report import write_sweep_report
from vaezoo.runs.lock import check_folder_kind, folder_lock, mark_folder
from vaezoo.runs.runner import check_inputs, check_saved_spec, resolve_device, run
from vaezoo.spec.experiment import ExperimentSpec
from vaezoo.sweeps.board import SweepBoard
from vaezoo.sweeps.grid import Point, SweepSpec
from vaezoo.sweeps.options import ExecutorOptions


class Executor(Protocol):
    def __call__(self, sweep: SweepSpec, todo: list[Point], sweep_dir: Path, board: SweepBoard, figures: bool) -> None:
        """Run every point of `todo` to a finished run folder under `sweep_dir`, telling `board`."""


EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry("executor")
ORPHAN_POLL_SECONDS = 0.5


def run_sweep(
    sweep: SweepSpec,
    points: list[Point],
    out: Path,
    jobs: int = 1,
    console: Console | None = None,
    figures: bool = True,
    executor: str = "local",
    options: ExecutorOptions | None = None,
) -> list[RunMetrics]:
    """Run every point of a sweep under out/<sweep name>/, skipping finished ones and resuming
    interrupted ones; then write the results table and the comparison report."""
    options = options or ExecutorOptions(jobs=jobs)
    if executor not in EXECUTORS:
        raise VaezooError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS.names())}")
    execute = EXECUTORS.get(executor)(options)  # before any file is written: a missing extra stops here
    sweep_dir = out / sweep.name
    for point in points:
        check_inputs(point.spec)
    check_folder_kind(sweep_dir, "sweep")  # never a run's folder of the same name, nor anyone else's
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot write output folder {sweep_dir}: {error.strerror or error}") from None
    with folder_lock(sweep_dir, "sweep folder"):
        check_folder_kind(sweep_dir, "sweep")  # again under the lock: a run may have claimed it meanwhile
        mark_folder(sweep_dir, "sweep")
        for point in points:  # before any training, so that a resumed point with another spec stops the sweep
            check_saved_spec(point.spec, sweep_dir / point.name)
        io.write_json(
            sweep_dir / "sweep.json",
            {
                "name": sweep.name,
                "headline": sweep.headline,
                "report": sweep.report,
                "points": [[p.name, p.varied] for p in points],
            },
        )
        board = SweepBoard(points, sweep_dir, console)
        todo = [p for p in points if not (sweep_dir / p.name / "metrics.json").exists()]
        board.start(todo)
        try:
            execute(sweep, todo, sweep_dir, board, figures)
        except BaseException:
            board.close(stopped=True)
            raise
        board.close()
        report_sweep(sweep_dir)
    return [finished_metrics(sweep_dir / p.name) for p in points]


@EXECUTORS.register("local")
def local_executor(options: ExecutorOptions) -> Executor:
    """Points one after another in this process, or in `jobs` spawned processes sharing the CPU's cores."""
    if options.jobs < 1:
        raise VaezooError("--jobs must be at least 1")

    def execute(sweep: SweepSpec, todo: list[Point], sweep_dir: Path, board: SweepBoard, figures: bool) -> None:
        cuda = any(resolve_device(p.spec.train.device).type == "cuda" for p in todo)
        if options.jobs <= 1 or cuda or len(todo) <= 1:
            for point in todo:
                board.running(point.name)
                board.finished(point.name, run(point.spec, sweep_dir, resume=True, console=None, figures=figures))
        else:
            _run_parallel(todo, sweep_dir, options.jobs, board, figures)

    return execute


@EXECUTORS.register("ray")
def ray_executor(options: ExecutorOptions) -> Executor:
    """Each point a Ray task (vaezoo.sweeps.ray_executor); imported only when asked for, as Ray is an extra."""
    from vaezoo.sweeps.ray_executor import RayExecutor

    return RayExecutor(options)


def _run_point(spec: ExperimentSpec, sweep_dir: Path, threads: int, figures: bool = True) -> RunMetrics:
    """One sweep point in a worker process (module level, so that a spawned process can import it)."""
    load_plugins()  # a spawned process has only vaezoo's own parts registered
    torch.set_num_threads(threads)
    return run(spec, sweep_dir, resume=True, figures=figures)


def _start_worker(driver: int) -> None:
    """In each worker: leave Ctrl-C to the driver (which stops the workers), and exit as soon as the
    driver is gone, however it went (SIGKILL included), rather than train on and start queued points."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(driver,), daemon=True, name="vaezoo-orphan-watch").start()


def _exit_with(driver: int) -> None:
    while os.getppid() == driver:
        time.sleep(ORPHAN_POLL_SECONDS)
    os._exit(1)


def _run_parallel(todo: list[Point], sweep_dir: Path, jobs: int, board: SweepBoard, figures: bool = True) -> None:
    """Points in `jobs` spawned processes, the CPU's cores shared between them. A stopped driver stops
    its workers; a worker that dies (the OOM killer, a kill) ends the sweep with one line naming the
    points it may have been running, the finished ones kept."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),))
    futures = {pool.submit(_run_point, p.spec, sweep_dir, threads, figures): p for p in todo}
    try:
        for point in todo[:jobs]:
            board.running(point.name)
        for future in as_completed(futures):
            board.finished(futures[future].name, future.result())
    except BrokenProcessPool:
        unfinished = [p.name for f, p in futures.items() if not f.done() or f.exception() is not None]
        raise OutputError(
            f"a worker process died (killed, or out of memory) while running one of {', '.join(unfinished[:jobs])}; "
            "finished points are kept: run the sweep again to resume the rest"
        ) from None
    finally:
        _stop_workers(pool)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers, also in the middle of a point (it resumes
    from its last checkpoint next time)."""
    # the executor keeps its processes here (before Python 3.14's kill_workers) and forgets them on shutdown
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=10)


def report_sweep(sweep_dir: Path) -> Path:
    """Rebuild a sweep's tables, comparison figures and report from its saved runs."""
    return write_sweep_report(read_sweep(sweep_dir), sweep_dir)


def rereport_sweep(sweep_dir: Path) -> Path:
    """`report_sweep` under the sweep folder's lock, for a sweep that is not running."""
    with folder_lock(sweep_dir, "sweep folder"):
        return report_sweep(sweep_dir)
