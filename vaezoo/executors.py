"""Sweep executors: a sweep's points run in this process or in a pool of local processes, finished
points are skipped and interrupted ones resume; then the sweep's tables, figures and report."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from rich.console import Console

from vaezoo import io
from vaezoo.errors import OutputError
from vaezoo.metrics import RunMetrics
from vaezoo.outputs.sweep_report import write_sweep_report
from vaezoo.runner import check_inputs, check_saved_spec, finished_metrics, resolve_device, run
from vaezoo.spec import ExperimentSpec
from vaezoo.sweep import Point, SweepSpec


def _run_point(spec: ExperimentSpec, sweep_dir: Path, threads: int, figures: bool = True) -> RunMetrics:
    """One sweep point in a worker process (module level, so that a spawned process can import it)."""
    torch.set_num_threads(threads)
    return run(spec, sweep_dir, resume=True, figures=figures)


def run_sweep(
    sweep: SweepSpec,
    points: list[Point],
    out: Path,
    jobs: int = 1,
    console: Console | None = None,
    figures: bool = True,
) -> list[RunMetrics]:
    """Run every point of a sweep under out/<sweep name>/, skipping finished ones and resuming
    interrupted ones; then write the results table and the comparison report."""
    sweep_dir = out / sweep.name
    for point in points:
        check_inputs(point.spec)
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot write output folder {sweep_dir}: {error.strerror or error}") from None
    for point in points:  # before any training, so that a resumed point with another spec stops the sweep
        check_saved_spec(point.spec, sweep_dir / point.name)
    io.write_json(
        sweep_dir / "sweep.json",
        {"name": sweep.name, "headline": sweep.headline, "points": [[p.name, p.varied] for p in points]},
    )
    board = SweepBoard(points, sweep_dir, console)
    todo = [p for p in points if not (sweep_dir / p.name / "metrics.json").exists()]
    board.start(todo)
    cuda = any(resolve_device(p.spec.train.device).type == "cuda" for p in todo)
    if jobs <= 1 or cuda or len(todo) <= 1:
        for point in todo:
            board.running(point)
            board.finished(point, run(point.spec, sweep_dir, resume=True, console=None, figures=figures))
    else:
        _run_parallel(todo, sweep_dir, jobs, board, figures)
    board.close()
    report_sweep(sweep_dir)
    return [finished_metrics(sweep_dir / p.name) for p in points]


def _run_parallel(todo: list[Point], sweep_dir: Path, jobs: int, board: SweepBoard, figures: bool = True) -> None:
    """Points in `jobs` spawned processes, the CPU's cores shared between them."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_point, p.spec, sweep_dir, threads, figures): p for p in todo}
        for point in todo[:jobs]:
            board.running(point)
        for future in as_completed(futures):
            board.finished(futures[future], future.result())


def report_sweep(sweep_dir: Path) -> Path:
    """Rebuild a sweep's tables, comparison figures and report from its saved runs."""
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    points = [(name, varied) for name, varied in manifest["points"]]
    missing = [name for name, _ in points if not (sweep_dir / name / "metrics.json").exists()]
    if missing:
        raise OutputError(
            f"sweep {sweep_dir} is not finished: {len(missing)} runs have no metrics.json (e.g. {missing[0]})"
        )
    results = [json.loads((sweep_dir / name / "metrics.json").read_text()) for name, _ in points]
    return write_sweep_report(manifest["name"], manifest["headline"], points, results, sweep_dir)


class SweepBoard:
    """The console overview of a sweep: points done, running and left, with each headline number."""

    def __init__(self, points: list[Point], sweep_dir: Path, console: Console | None) -> None:
        self.total = len(points)
        self.console = console
        self.done = 0
        self.sweep_dir = sweep_dir
        self.start_time = time.perf_counter()

    def _print(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def start(self, todo: list[Point]) -> None:
        self.done = self.total - len(todo)
        self._print(f"sweep {self.sweep_dir}: {self.total} points, {self.done} already finished, {len(todo)} to run")

    def running(self, point: Point) -> None:
        self._print(f"  running  {point.name}")

    def finished(self, point: Point, metrics: RunMetrics) -> None:
        self.done += 1
        self._print(
            f"  [{self.done}/{self.total} done, {self.total - self.done} left] {point.name}: "
            f"test NLL (IS, K = {metrics.iw_samples}) "
            f"{metrics.test_nll_iw:.2f}, -ELBO {metrics.test_neg_elbo:.2f} nats/image "
            f"({metrics.train_seconds:.0f} s training)"
        )

    def close(self) -> None:
        self._print(f"sweep done in {time.perf_counter() - self.start_time:.0f} s: results in {self.sweep_dir}")
