"""run(spec): build, train and evaluate one experiment in its own run folder, resumably."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from vaezoo import data as datasets
from vaezoo.core import io
from vaezoo.core.errors import OutputError, VaezooError
from vaezoo.evaluate.evaluation import Evaluation, FamilyEval, Phase, evaluate_all
from vaezoo.evaluate.latents import code_moments
from vaezoo.evaluate.progress import PhaseView, quiet_phase
from vaezoo.evaluate.records import HistoryRow, RunMetrics, finished_metrics
from vaezoo.model.vae import VAE
from vaezoo.outputs.figures import applicable_figures, write_run_figures
from vaezoo.outputs.paired import PER_IMAGE_NLL
from vaezoo.outputs.report import write_run_report
from vaezoo.parts import LIKELIHOODS
from vaezoo.runs.lock import check_folder_kind, folder_kind, folder_lock, mark_folder
from vaezoo.spec.build import build_kl_weighting, build_model, build_objective, nll_kind
from vaezoo.spec.experiment import ExperimentSpec, load_spec
from vaezoo.train.checkpoint import first_difference, read_checkpoint, training_fields
from vaezoo.train.loop import TrainConfig, fit


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaezooError("train.device is cuda, but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


def run_dir_for(spec: ExperimentSpec, out: Path) -> Path:
    """out/<name>; the name's pattern already rules out separators and '..'."""
    return out / spec.name


def prepare_run_dir(spec: ExperimentSpec, run_dir: Path, resume: bool) -> bool:
    """Create the run folder (marked as a run), or check that an existing one is a vaezoo run that may be
    resumed with this very spec; nothing in a folder that is not a run is touched. True where a finished run
    is re-opened to train more epochs (see check_saved_spec)."""
    check_folder_kind(run_dir, "run")
    extending = False
    if folder_kind(run_dir) == "run":
        if not resume:
            raise OutputError(
                f"run folder {run_dir} already exists; pass --resume to continue it, "
                f"or give the new run another name (--set name=...) or folder (--out)"
            )
        extending = check_saved_spec(spec, run_dir, extend=True)
        io.remove_stale_temporaries(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".vaezoo-write-test"
        probe.touch()
        probe.unlink()
        mark_folder(run_dir, "run")
    except OSError as error:
        raise OutputError(f"cannot write output folder {run_dir}: {error.strerror or error}") from None
    return extending


def check_saved_spec(spec: ExperimentSpec, run_dir: Path, extend: bool = False) -> bool:
    """A run folder either has no spec.yaml yet or holds a run of this very spec: resuming with a
    different spec would mix two experiments in one folder. An unfinished run may change only what does
    not change training (checkpoint.UNTRAINED: eval, logging, more epochs). A finished run is reused as it
    is, so its metrics.json must read and its spec must be this one exactly (checked here, before a sweep
    trains anything), unless `extend` and this spec asks for more epochs of the same training: then the run
    is re-opened (True), to continue from its checkpoint and be evaluated again. A sweep does not extend
    its finished points (it would skip them): it refuses them."""
    check_folder_kind(run_dir, "run")
    finished = (run_dir / "metrics.json").exists()
    if finished:
        finished_metrics(run_dir)
    saved = run_dir / "spec.yaml"
    if not saved.exists():
        return False
    old = load_spec(saved)
    if finished and old.model_dump() == spec.model_dump():
        return False
    if bound_fields(old) != bound_fields(spec):
        key = first_difference(bound_fields(old), bound_fields(spec))
        raise OutputError(f"{saved} differs from this spec at {key}{_why(key)}")
    if finished and not (extend and spec.train.epochs > old.train.epochs):
        key = first_difference(old.model_dump(mode="json"), spec.model_dump(mode="json"))
        further = "trained further alone (more train.epochs)" if not extend else "trained further (more train.epochs)"
        raise OutputError(
            f"{run_dir} is a finished run of {old.train.epochs} epochs, and this spec differs at {key}: a finished "
            f"run is reused as it is, or {further}"
        )
    return finished


def bound_fields(spec: ExperimentSpec) -> dict[str, Any]:
    """What a run folder's spec may not change: checkpoint.training_fields, and train.epochs where a step
    trains differently in a run of another length (follows_run_length)."""
    fields = training_fields(spec)
    if follows_run_length(spec):
        fields["train"]["epochs"] = spec.train.epochs
    return fields


def follows_run_length(spec: ExperimentSpec) -> bool:
    """Whether a step trains differently in a longer run, so that the run cannot be extended to equal a
    longer one: a learning-rate schedule over the run's epochs (any but constant), or a KL weighting whose
    beta is spread over the run's steps (cyclical). The weighting is asked, not named: its beta at the
    same steps of runs of two lengths."""
    if spec.train.lr_schedule != "constant":
        return True
    weighting = build_kl_weighting(spec)
    return any(weighting.beta(step, 1000) != weighting.beta(step, 2000) for step in range(0, 1000, 7))


def _why(key: str) -> str:
    """What to do about a spec that differs from a run's saved one at `key`."""
    if key == "train.epochs":
        return (
            " (its learning-rate schedule or KL weighting spreads over the run's length, so a longer run is "
            "another run); give it another name or folder"
        )
    return "; resume with the same spec, or give this one another name or folder"


def check_inputs(spec: ExperimentSpec) -> datasets.DatasetInfo:
    """Everything that can fail before a single file is written: model shapes, data files, device."""
    info = datasets.check_files(spec.data)
    build_model(spec.model, info.image_shape)
    resolve_device(spec.train.device)
    if spec.train.tensorboard:
        from vaezoo.train.tensorboard_log import require

        require()
    return info


def run(
    spec: ExperimentSpec,
    out: Path,
    resume: bool = False,
    console: Console | None = None,
    figures: bool = True,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> RunMetrics:
    """Train and evaluate `spec` in out/<name>; returns its metrics. A finished run is not retrained.

    With `figures` False the run's figures are not drawn (its report leaves them out): for tests.
    `on_checkpoint(run_dir)` is called after each checkpoint is written (see `train.fit`).
    """
    run_dir = run_dir_for(spec, out)
    info = check_inputs(spec)
    check_folder_kind(run_dir, "run")  # before the lock writes its .lock into someone else's folder
    with folder_lock(run_dir, create=True):  # one writer: a second process is told the folder is busy
        return _train_and_evaluate(spec, run_dir, info, resume, console, figures, on_checkpoint)


def _train_and_evaluate(
    spec: ExperimentSpec,
    run_dir: Path,
    info: datasets.DatasetInfo,
    resume: bool,
    console: Console | None,
    figures: bool,
    on_checkpoint: Callable[[Path], None] | None,
) -> RunMetrics:
    metrics_path = run_dir / "metrics.json"
    extending = prepare_run_dir(spec, run_dir, resume)
    if metrics_path.exists() and not extending:
        return finished_metrics(run_dir)
    device = resolve_device(spec.train.device)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, info.image_shape).to(device)
    resuming = resume and (run_dir / "checkpoint.pt").exists()
    if resuming:  # before spec.yaml claims the folder for this spec (a saved one matched: it vouches)
        read_checkpoint(run_dir / "checkpoint.pt", model, device, spec, vouched=(run_dir / "spec.yaml").exists())
    if extending:
        if not resuming:
            raise OutputError(f"{run_dir} has no checkpoint.pt to train further from")
        metrics_path.unlink()  # unfinished from here on: a stop leaves a run to resume, not stale numbers
    io.write_text(run_dir / "spec.yaml", spec.to_yaml())
    data = datasets.read(info, spec.data, device)  # check_inputs verified the files
    if not resuming and spec.model.output_init == "data":
        model.init_output(*(stat.float() for stat in data.pixel_stats(spec.seed)))
    config = TrainConfig.from_spec(spec)
    objective = build_objective(spec, data.n_train)
    state = fit(model, data, build_kl_weighting(spec), config, run_dir, resume, console, objective, on_checkpoint)
    view = PhaseView(console)
    evaluation = evaluate_run(spec, model, data, phase=view.phase)
    metrics = RunMetrics(
        **dataclasses.asdict(evaluation.metrics),
        **labels(spec, data),
        **training_summary(model, data, state.history, device),
    )
    trained = {
        "train": sum(r.seconds for r in state.history),
        "validation": sum(r.val_seconds or 0 for r in state.history),
    }
    metrics = dataclasses.replace(metrics, phase_seconds=trained | view.seconds)  # what the report can show
    render(run_dir, spec, model, data, state.history, metrics, figures, view, evaluation.test_mu)
    metrics = dataclasses.replace(metrics, phase_seconds=trained | view.seconds)  # with figures and report
    io.save_torch(run_dir / PER_IMAGE_NLL, evaluation.test_nll_per_image)
    io.write_json(metrics_path, metrics.to_json())  # last: its presence marks the run finished
    return metrics


def render(
    run_dir: Path,
    spec: ExperimentSpec,
    model: VAE,
    data: datasets.DeviceData,
    history: list[HistoryRow],
    metrics: RunMetrics,
    figures: bool = True,
    view: PhaseView | None = None,
    test_mu: torch.Tensor | None = None,
) -> None:
    """Every figure of a trained run (unless `figures` is False), then its report (md, html, pdf).

    `test_mu`: the test posterior means where the evaluation has them; else they are encoded here.
    """
    phase = view.phase if view is not None else quiet_phase
    if figures:
        kinds = len(applicable_figures(model)) + 1  # and the sweep strips
        with phase("figures", kinds, key="figures") as advance:
            mu = test_mu if test_mu is not None else code_moments(model, data.test_images, spec.eval.batch_size).mean
            write_run_figures(
                model, data.test_images, data.test_labels, history, metrics.kl_per_dim, metrics.active_mask, mu,
                run_dir / "figures", advance,
            )  # fmt: skip
    with phase("report (pdf, html, md)", key="report"):
        write_run_report(run_dir, spec, metrics, history)


def evaluate_run(
    spec: ExperimentSpec,
    model: VAE,
    data: datasets.DeviceData,
    iw_samples: int | None = None,
    phase: Phase = quiet_phase,
) -> Evaluation:
    """The test metrics of a trained run (K = `iw_samples`, else the spec's)."""
    info = datasets.DATASETS.get(spec.data.dataset)
    k = iw_samples or spec.eval.iw_samples
    return evaluate_all(model, data, k, spec.eval.batch_size, info.classes, phase, FamilyEval.of(spec))


def labels(spec: ExperimentSpec, data: datasets.DeviceData) -> dict[str, Any]:
    """What the run's numbers are: the kind of NLL, the binarization and the split."""
    return {
        "nll_kind": nll_kind(spec),
        "discrete": LIKELIHOODS.get(spec.model.likelihood.kind).discrete,
        "binarize": spec.data.binarize,
        "split": f"{data.n_train}/{data.val_images.shape[0]}/{data.test_images.shape[0]} train/val/test",
    }


def training_summary(
    model: VAE, data: datasets.DeviceData, history: list[HistoryRow], device: torch.device
) -> dict[str, Any]:
    """What the run cost: epochs, parameters, seconds and throughput of the training steps alone."""
    train_seconds = sum(row.seconds for row in history)
    return {
        "epochs": len(history),
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "train_images_per_second": data.n_train * len(history) / train_seconds,
        "device": str(device),
    }
