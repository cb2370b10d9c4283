"""A saved run, used again without training: loaded (spec, model, data, history), re-evaluated,
redrawn or re-reported in place. Only a finished run, and only under its folder's lock."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from vaezoo import data as datasets
from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.evaluate.records import HistoryRow, RunMetrics, finished_metrics, read_history
from vaezoo.model.vae import VAE
from vaezoo.outputs.paired import PER_IMAGE_NLL
from vaezoo.outputs.report import write_run_report
from vaezoo.runs.lock import folder_lock
from vaezoo.runs.runner import (
    check_inputs,
    evaluate_run,
    render,
    resolve_device,
)
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import ExperimentSpec, load_spec
from vaezoo.train.checkpoint import read_checkpoint
from vaezoo.train.ema import load_averaged


def refigure(run_dir: Path, device_name: str | None = None) -> None:
    """Redraw a finished run's figures and report from its checkpoint, without training."""
    with folder_lock(run_dir):
        metrics = finished_metrics(run_dir)
        loaded = load_run(run_dir, device_name)
        render(run_dir, loaded.spec, loaded.model, loaded.data, loaded.history, metrics)


def rereport(run_dir: Path) -> Path:
    """Rewrite a finished run's report from its saved files, without training."""
    with folder_lock(run_dir, "run folder"):
        metrics = finished_metrics(run_dir)
        spec = load_spec(run_dir / "spec.yaml")
        return write_run_report(run_dir, spec, metrics, read_history(run_dir))


@dataclass(frozen=True)
class LoadedRun:
    """A saved run as loaded: its spec, trained model (from the checkpoint), data on the device, history."""

    spec: ExperimentSpec
    model: VAE
    data: datasets.DeviceData
    history: list[HistoryRow]


def load_run(run_dir: Path, device_name: str | None = None) -> LoadedRun:
    """A saved run's spec, trained model (from its checkpoint), data on the device and history."""
    saved, checkpoint = run_dir / "spec.yaml", run_dir / "checkpoint.pt"
    for path in (saved, checkpoint):
        if not path.exists():
            raise OutputError(f"{run_dir} is not a trained run: {path.name} is missing")
    spec = load_spec(saved)
    device = resolve_device(device_name or spec.train.device)
    info = check_inputs(spec)
    model = build_model(spec.model, info.image_shape).to(device)
    state = read_checkpoint(checkpoint, model, device, spec, vouched=True)  # spec.yaml was written before it
    if state.ema is not None:  # a run with train.ema is evaluated and drawn with its average
        with io.reading(checkpoint):
            load_averaged(model, state.ema)
    return LoadedRun(spec, model, datasets.read(info, spec.data, device), state.history)


def reevaluate(run_dir: Path, iw_samples: int | None, device_name: str | None) -> RunMetrics:
    """Recompute a finished run's test metrics (e.g. with more importance samples) into metrics.json.

    Only a finished run: metrics.json marks a run finished, so writing one for an interrupted run
    would make resume and sweeps skip it.
    """
    with folder_lock(run_dir):
        return _reevaluate(run_dir, iw_samples, device_name)


def _reevaluate(run_dir: Path, iw_samples: int | None, device_name: str | None) -> RunMetrics:
    previous = finished_metrics(run_dir)
    loaded = load_run(run_dir, device_name)
    evaluation = evaluate_run(loaded.spec, loaded.model, loaded.data, iw_samples)
    metrics = dataclasses.replace(previous, **dataclasses.asdict(evaluation.metrics))
    # the report first: if it fails, metrics.json still matches the report and per-image NLLs on disk
    write_run_report(run_dir, loaded.spec, metrics, loaded.history)
    io.save_torch(run_dir / PER_IMAGE_NLL, evaluation.test_nll_per_image)
    io.write_json(run_dir / "metrics.json", metrics.to_json())  # last, as in a run
    return metrics
