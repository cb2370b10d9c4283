"""run(spec): build, train and evaluate one experiment in its own run folder, resumably."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from vaezoo import data as datasets
from vaezoo import io
from vaezoo.errors import OutputError, SpecError, VaezooError
from vaezoo.evaluate import evaluate_all
from vaezoo.figures import write_run_figures
from vaezoo.kl import KL_WEIGHTINGS, KLWeighting
from vaezoo.likelihoods import LIKELIHOODS
from vaezoo.model import VAE
from vaezoo.nn import DECODERS, ENCODERS
from vaezoo.report import write_run_report
from vaezoo.schema import build
from vaezoo.spec import ExperimentSpec, ModelSpec, parse_yaml, validate
from vaezoo.train import TrainConfig, fit

FILES = ("spec.yaml", "checkpoint.pt", "history.jsonl", "metrics.json")


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaezooError("train.device is cuda, but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


def build_model(spec: ModelSpec, image_shape: tuple[int, int, int]) -> VAE:
    """The VAE the spec describes; an impossible shape (a conv stack too deep) is a SpecError."""
    context = {"image_shape": image_shape, "latent_dim": spec.latent_dim}
    try:
        encoder = build(ENCODERS, spec.encoder, **context)
        decoder = build(DECODERS, spec.decoder, **context)
    except ValueError as error:
        raise SpecError(f"model: {error}") from None
    likelihood = build(LIKELIHOODS, spec.likelihood, image_shape=image_shape)
    return VAE(encoder, decoder, likelihood, spec.latent_dim)


def build_kl_weighting(spec: ExperimentSpec) -> KLWeighting:
    return build(KL_WEIGHTINGS, spec.kl)


def nll_kind(spec: ExperimentSpec) -> str:
    """What the reported NLL is: a discrete log-likelihood, a continuous density, or neither."""
    if not LIKELIHOODS.get(spec.model.likelihood.kind).discrete:
        return "continuous density (nats)"
    if spec.data.binarize == "none":
        return "not a likelihood: Bernoulli BCE on grey levels"
    return "log-likelihood of binary images (nats)"


def run_dir_for(spec: ExperimentSpec, out: Path) -> Path:
    """out/<name>; the name's pattern already rules out separators and '..'."""
    return out / spec.name


def prepare_run_dir(spec: ExperimentSpec, run_dir: Path, resume: bool) -> None:
    """Create the run folder, or check that an existing one may be resumed with this very spec."""
    saved = run_dir / "spec.yaml"
    if run_dir.exists() and any(run_dir.iterdir()):
        if not resume:
            raise OutputError(f"run folder {run_dir} already exists; pass --resume to continue it, or choose --out")
        if saved.exists():
            _check_same_spec(spec, saved)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".vaezoo-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write output folder {run_dir}: {error.strerror or error}") from None


def _check_same_spec(spec: ExperimentSpec, saved: Path) -> None:
    """Resuming with a different spec would mix two experiments in one folder."""
    old = validate(parse_yaml(saved.read_text(), str(saved)), str(saved))
    if old != spec:
        key = _first_difference(old.model_dump(), spec.model_dump())
        raise OutputError(f"{saved} differs from this spec at {key}; resume with the same spec or choose --out")


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if a[key] != b.get(key):
                return _first_difference(a[key], b.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "spec"


def check_inputs(spec: ExperimentSpec) -> datasets.DatasetInfo:
    """Everything that can fail before a single file is written: model shapes, data files, device."""
    info = datasets.check_files(spec.data)
    build_model(spec.model, info.image_shape)
    resolve_device(spec.train.device)
    return info


def run(spec: ExperimentSpec, out: Path, resume: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Train and evaluate `spec` in out/<name>; returns its metrics. A finished run is not retrained."""
    run_dir = run_dir_for(spec, out)
    metrics_path = run_dir / "metrics.json"
    info = check_inputs(spec)
    prepare_run_dir(spec, run_dir, resume)
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    io.write_text(run_dir / "spec.yaml", spec.to_yaml())
    device = resolve_device(spec.train.device)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, info.image_shape).to(device)
    data = datasets.load(spec.data, device)
    config = TrainConfig(
        epochs=spec.train.epochs,
        batch_size=spec.train.batch_size,
        lr=spec.train.lr,
        seed=spec.seed,
        eval_batch_size=spec.eval.batch_size,
    )
    state = fit(model, data, build_kl_weighting(spec), config, run_dir, resume, console)
    metrics = evaluate_run(spec, model, data) | training_summary(model, data, state.history, device)
    render(run_dir, spec, model, data, state.history, metrics)
    io.write_json(metrics_path, metrics)  # last: its presence marks the run finished
    return metrics


def render(
    run_dir: Path,
    spec: ExperimentSpec,
    model: VAE,
    data: datasets.DeviceData,
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
) -> None:
    """Every figure of a trained run, then its report."""
    write_run_figures(
        model,
        data.test_images,
        data.test_labels,
        history,
        metrics["kl_per_dim"],
        metrics["active_mask"],
        None,
        run_dir / "figures",
    )
    write_run_report(run_dir, spec, metrics, history)


def finished_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a finished run; OutputError if the run has not finished."""
    path = run_dir / "metrics.json"
    if not path.exists():
        raise OutputError(f"{run_dir} has no metrics.json: the run has not finished (run it, or --resume it)")
    return json.loads(path.read_text())


def refigure(run_dir: Path, device_name: str | None = None) -> None:
    """Redraw a finished run's figures and report from its checkpoint, without training."""
    metrics = finished_metrics(run_dir)
    spec, model, data, history = load_run(run_dir, device_name)
    render(run_dir, spec, model, data, history, metrics)


def rereport(run_dir: Path) -> Path:
    """Rewrite a finished run's report from its saved spec, metrics, history and figures."""
    metrics = finished_metrics(run_dir)
    saved = run_dir / "spec.yaml"
    spec = validate(parse_yaml(saved.read_text(), str(saved)), str(saved))
    return write_run_report(run_dir, spec, metrics, io.read_jsonl(run_dir / "history.jsonl"))


def evaluate_run(spec: ExperimentSpec, model: VAE, data: datasets.DeviceData, iw_samples: int | None = None) -> dict[str, Any]:
    """The test metrics of a trained run, labelled with what kind of number the NLL is."""
    info = datasets.DATASETS.get(spec.data.dataset)
    metrics = evaluate_all(model, data, iw_samples or spec.eval.iw_samples, spec.eval.batch_size, info.classes)
    return metrics | {
        "nll_kind": nll_kind(spec),
        "binarize": spec.data.binarize,
        "split": f"{data.n_train}/{data.val_images.shape[0]}/{data.test_images.shape[0]} train/val/test",
    }


def training_summary(model: VAE, data: datasets.DeviceData, history: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
    """What the run cost: epochs, parameters, seconds and throughput of the training steps alone."""
    train_seconds = sum(row["seconds"] for row in history)
    return {
        "epochs": len(history),
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "train_images_per_second": data.n_train * len(history) / train_seconds,
        "device": str(device),
    }


def load_run(run_dir: Path, device_name: str | None = None) -> tuple[ExperimentSpec, VAE, datasets.DeviceData, list[dict[str, Any]]]:
    """A saved run's spec, trained model (from its checkpoint), data on the device and history."""
    saved, checkpoint = run_dir / "spec.yaml", run_dir / "checkpoint.pt"
    for path in (saved, checkpoint):
        if not path.exists():
            raise OutputError(f"{run_dir} is not a trained run: {path.name} is missing")
    spec = validate(parse_yaml(saved.read_text(), str(saved)), str(saved))
    device = resolve_device(device_name or spec.train.device)
    info = check_inputs(spec)
    model = build_model(spec.model, info.image_shape).to(device)
    state = torch.load(checkpoint, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    return spec, model, datasets.load(spec.data, device), state["history"]


def reevaluate(run_dir: Path, iw_samples: int | None, device_name: str | None) -> dict[str, Any]:
    """Recompute a finished run's test metrics (e.g. with more importance samples) into metrics.json."""
    spec, model, data, _ = load_run(run_dir, device_name)
    metrics_path = run_dir / "metrics.json"
    previous = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics = previous | evaluate_run(spec, model, data, iw_samples)
    io.write_json(metrics_path, metrics)
    if previous:
        write_run_report(run_dir, spec, metrics, io.read_jsonl(run_dir / "history.jsonl"))
    return metrics
