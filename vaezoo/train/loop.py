"""The training loop: device-resident batches, no host sync per step, a checkpoint every epoch, exact resume."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from vaezoo.core import io
from vaezoo.core.errors import VaezooError
from vaezoo.data import DeviceData
from vaezoo.evaluate.bounds import elbo_means
from vaezoo.evaluate.records import HistoryRow
from vaezoo.model.vae import VAE
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.lr_schedules import LR_SCHEDULES, set_lr
from vaezoo.parts.objectives import ELBO, Objective
from vaezoo.train.checkpoint import TrainState, load_checkpoint, save_checkpoint, training_fields
from vaezoo.train.cuda_graphs import CapturedStep, StepRunner
from vaezoo.train.ema import WeightAverage, load_averaged
from vaezoo.train.progress import DIVERGED_NATS, EpochTotals, ProgressView, RunningLoss
from vaezoo.train.scalars import ScalarLog, StepWindow
from vaezoo.train.scalars import write_csv as write_scalars
from vaezoo.train.step import TrainStep
from vaezoo.train.tensorboard_log import TensorBoardLog

if TYPE_CHECKING:
    from vaezoo.spec.experiment import ExperimentSpec

POLL_EVERY = 25  # steps between (non-blocking) reads of the running losses


class TrainingDiverged(VaezooError):
    """The loss diverged (NaN, infinite, or beyond DIVERGED_NATS); the last good checkpoint is left as it was."""


@dataclass
class TrainConfig:
    """What the loop needs from the spec, as plain values."""

    epochs: int
    batch_size: int
    lr: float
    seed: int
    eval_batch_size: int
    lr_schedule: str = "constant"
    precision: str = "fp32"
    cuda_graphs: bool = True
    checkpoint_every: int = 1
    log_every: int = 50
    tensorboard: bool = False
    grad_clip: float | None = None
    ema: float | None = None
    #: the spec's training fields, which every checkpoint carries (None: fit called without a spec)
    spec_fields: dict[str, Any] | None = None

    @classmethod
    def from_spec(cls, spec: ExperimentSpec) -> TrainConfig:
        train = spec.train
        return cls(
            epochs=train.epochs,
            batch_size=train.batch_size,
            lr=train.lr,
            seed=spec.seed,
            eval_batch_size=spec.eval.batch_size,
            lr_schedule=train.lr_schedule,
            precision=train.precision,
            cuda_graphs=train.cuda_graphs,
            checkpoint_every=train.checkpoint_every,
            log_every=train.log_every,
            tensorboard=train.tensorboard,
            grad_clip=train.grad_clip,
            ema=train.ema,
            spec_fields=training_fields(spec),
        )


def make_optimizer(model: VAE, lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam, fused where this torch and device support it (it is markedly faster on CPU and CUDA).

    `capturable`: a CUDA graph replays the step, so the rate and the step count live on the device.
    """
    if capturable:
        device = next(model.parameters()).device
        return torch.optim.Adam(model.parameters(), lr=torch.tensor(lr, device=device), fused=True, capturable=True)
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _keep_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """A loaded state dict brings its groups' settings; keep the ones this run's step needs."""
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        lr = float(group["lr"])
        device = group["params"][0].device
        group["lr"] = torch.tensor(lr, device=device) if capturable else lr


@dataclass
class DivergenceStop:
    """Stops a run whose loss diverged, naming the run (a sweep's point), the epoch and step, and the
    checkpoint that is kept: the last one written, or none when the run diverged before its first."""

    run_dir: Path
    saved_epoch: int | None  # the epoch of the checkpoint on disk, None while there is none

    def check(self, totals: EpochTotals, epoch: int) -> None:
        """Raise TrainingDiverged if the epoch's running totals record a diverged step."""
        bad_step = totals.first_bad_step
        if bad_step is None:
            return
        kept = (
            f"its checkpoint of epoch {self.saved_epoch} is kept"
            if self.saved_epoch is not None
            else "it has no checkpoint yet"
        )
        raise TrainingDiverged(
            f"run {self.run_dir}: the loss diverged (NaN, infinite or beyond {DIVERGED_NATS:.0e} nats per image) at "
            f"epoch {epoch + 1}, step {bad_step + 1} of the run; stopped, and {kept} (try a lower train.lr)"
        )


def fit(
    model: VAE,
    data: DeviceData,
    kl_weighting: KLWeighting,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    console: Console | None = None,
    objective: Objective | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> TrainState:
    """Train to config.epochs, checkpointing after every epoch; with `resume`, continue from the checkpoint.

    A resumed run ends with the same parameters and history (timings aside) as an uninterrupted one.
    `on_checkpoint(run_dir)` is called after each checkpoint and its history are written (an executor
    without a shared filesystem copies them off the worker there).
    """
    device = data.train_images.device
    generator = torch.Generator(device).manual_seed(config.seed)
    graphed = config.cuda_graphs and device.type == "cuda"
    optimizer = make_optimizer(model, config.lr, capturable=graphed)
    average = WeightAverage(model, config.ema) if config.ema is not None else None
    checkpoint = run_dir / "checkpoint.pt"
    resuming = resume and checkpoint.exists()
    state = load_checkpoint(checkpoint, model, optimizer, generator, average) if resuming else TrainState()
    if resuming:  # the checkpoint is the record; a kill may have come before these views were rewritten
        _write_views(run_dir, state)
    _keep_capturable(optimizer, graphed)
    steps_per_epoch = math.ceil(data.n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    window = StepWindow(device)
    step = TrainStep(
        model,
        objective or ELBO(),
        kl_weighting,
        optimizer,
        data,
        generator,
        RunningLoss(device),
        config.precision,
        window,
        config.grad_clip,
        average,
    )
    scalars = ScalarLog(window, state.scalars)
    runner: StepRunner = CapturedStep(step) if graphed else step
    schedule = LR_SCHEDULES.get(config.lr_schedule)
    board = TensorBoardLog(run_dir, state.step) if config.tensorboard else None
    stop = DivergenceStop(run_dir, state.epoch if resuming else None)
    with ProgressView(console, total_steps, state.step) as view:
        for epoch in range(state.epoch, config.epochs):
            lr = schedule(config.lr, epoch, config.epochs)
            set_lr(optimizer, lr)
            row = _train_epoch(runner, step, total_steps, config, state, epoch, view, lr, scalars, stop)
            with average.applied() if average is not None else contextlib.nullcontext():
                row = _validate(row, model, data, config)
            state.history.append(row)
            state.epoch = epoch + 1
            if state.epoch % config.checkpoint_every == 0 or state.epoch == config.epochs:
                save_checkpoint(checkpoint, model, optimizer, state, generator, average, config.spec_fields)
                stop.saved_epoch = state.epoch
                _write_views(run_dir, state)
                if on_checkpoint is not None:
                    on_checkpoint(run_dir)
            view.epoch_done(row)
            if board is not None:
                board.epoch(state.scalars, row, model)
    if board is not None:
        board.close()
    if average is not None:  # what the run evaluates and draws from here on
        load_averaged(model, average.state_dict())
    return state


def _write_views(run_dir: Path, state: TrainState) -> None:
    """history.jsonl and scalars.csv: readable views of what the checkpoint holds."""
    io.write_jsonl(run_dir / "history.jsonl", [r.to_json() for r in state.history])
    write_scalars(run_dir / "scalars.csv", state.scalars)


def _train_epoch(
    runner: StepRunner,
    step: TrainStep,
    total_steps: int,
    config: TrainConfig,
    state: TrainState,
    epoch: int,
    view: ProgressView,
    lr: float,
    scalars: ScalarLog,
    stop: DivergenceStop,
) -> HistoryRow:
    """One pass over a fresh permutation of the training set; returns the epoch's history row."""
    step.model.train()
    running, generator, n_train = step.running, step.generator, step.data.n_train
    running.reset()
    start = time.perf_counter()
    permutation = torch.randperm(n_train, generator=generator, device=generator.device)
    beta = 0.0
    for index in permutation.split(config.batch_size):
        beta = step.kl_weighting.beta(state.step, total_steps)
        runner(index, state.step, beta)
        state.step += 1
        if state.step % config.log_every == 0:
            scalars.close(state.step, epoch + 1, beta, lr)
        if state.step % POLL_EVERY == 0:
            polled = running.poll()
            if polled is not None:
                stop.check(polled, epoch)
            view.update(state.step, epoch, config.epochs, beta, polled)
    if state.step % config.log_every != 0:  # windows end with their epoch, so a resume repeats them exactly
        scalars.close(state.step, epoch + 1, beta, lr)
    totals = running.read()  # the one sync of the epoch
    scalars.collect()
    seconds = time.perf_counter() - start
    stop.check(totals, epoch)
    loss, recon, kl = totals.means() or (math.nan, math.nan, math.nan)
    return HistoryRow(
        epoch=epoch + 1,
        step=state.step,
        train_loss=loss,
        train_recon=recon,
        train_kl=kl,
        beta=beta,
        seconds=seconds,
        images_per_second=n_train / seconds,
        lr=lr,
    )


def _validate(row: HistoryRow, model: VAE, data: DeviceData, config: TrainConfig) -> HistoryRow:
    """The epoch's row with its validation -ELBO (beta = 1) and terms; unchanged without a validation split."""
    if data.val_images.shape[0] == 0:
        return row
    start = time.perf_counter()
    means = elbo_means(model, data.val_images, config.eval_batch_size, data.val_labels)
    return dataclasses.replace(
        row,
        val_neg_elbo=means.neg_elbo,
        val_recon=means.recon_nll,
        val_kl=means.kl,
        val_seconds=time.perf_counter() - start,
    )
