"""The training loop: device-resident batches, no host sync per step, a checkpoint every epoch, exact resume."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vaezoo import io
from vaezoo.data import DeviceData
from vaezoo.errors import VaezooError
from vaezoo.evaluate import elbo_means
from vaezoo.kl import KLWeighting
from vaezoo.model import VAE, ELBOTerms
from vaezoo.objectives import ELBO, Objective

POLL_EVERY = 25  # steps between (non-blocking) reads of the running losses


class TrainingDiverged(VaezooError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainConfig:
    """What the loop needs from the spec, as plain values."""

    epochs: int
    batch_size: int
    lr: float
    seed: int
    eval_batch_size: int


@dataclass
class TrainState:
    """Where a run stands after a whole number of epochs; what a checkpoint restores."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def make_optimizer(model: VAE, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch and device support it (it is markedly faster on CPU and CUDA)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


class RunningLoss:
    """Per-epoch sums of the step losses, kept on the device and read without waiting on it.

    Every POLL_EVERY steps the sums are copied to the host asynchronously; the previous copy is used
    only once its CUDA event has completed, so the step loop never blocks on the GPU.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums = torch.zeros(4, device=device)  # loss, recon, kl, images
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self._host = torch.zeros(5, dtype=torch.float64, pin_memory=device.type == "cuda")
        self._event: torch.cuda.Event | None = None

    def add(self, terms: ELBOTerms, step: int) -> None:
        loss = terms.loss.detach()
        batch = torch.stack([loss.sum(), terms.recon_nll.detach().sum(), terms.kl.detach().sum()])
        self.sums[:3] += batch
        self.sums[3] += loss.shape[0]
        bad = ~torch.isfinite(batch).all() & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, step, self.first_bad_step)

    def snapshot(self) -> torch.Tensor:
        """(loss, recon, kl, images, first bad step) as one float64 tensor on the device."""
        return torch.cat([self.sums.double(), self.first_bad_step.double().unsqueeze(0)])

    def poll(self) -> torch.Tensor | None:
        """The latest completed host copy of the snapshot, or None while the previous copy is in flight."""
        if self._event is not None and not self._event.query():
            return None
        previous = self._host.clone()
        self._host.copy_(self.snapshot(), non_blocking=True)
        if self.device.type != "cuda":
            return self._host.clone()  # a CPU copy is already complete
        self._event = torch.cuda.Event()
        self._event.record()
        return previous

    def read(self) -> torch.Tensor:
        """A synchronous read, for the end of an epoch."""
        return self.snapshot().cpu()


def check_finite(values: torch.Tensor, epoch: int) -> None:
    """Stop the run, naming the epoch and step, if any step's loss was not finite."""
    bad_step = int(values[4])
    if bad_step >= 0:
        raise TrainingDiverged(
            f"the loss became NaN or infinite at epoch {epoch + 1}, step {bad_step + 1} of the run; stopped, and the "
            f"checkpoint of epoch {epoch} is kept (try a lower train.lr)"
        )


class ProgressView:
    """A rich progress bar with live loss, recon, KL and beta; silent when there is no console."""

    def __init__(self, console: Console | None, total_steps: int, done_steps: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]} recon {task.fields[recon]} KL {task.fields[kl]} beta {task.fields[beta]}"),
            console=console,
            disable=console is None,
            transient=True,
        )
        self.task = self.progress.add_task("training", total=total_steps, completed=done_steps, loss="-", recon="-", kl="-", beta="-")

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, epoch: int, epochs: int, beta: float, values: torch.Tensor | None) -> None:
        fields: dict[str, str] = {"beta": f"{beta:.3f}"}
        if values is not None and values[3] > 0:
            loss, recon, kl = (values[:3] / values[3]).tolist()
            fields |= {"loss": f"{loss:.2f}", "recon": f"{recon:.2f}", "kl": f"{kl:.2f}"}
        self.progress.update(self.task, completed=step, description=f"epoch {epoch + 1}/{epochs}", **fields)

    def epoch_done(self, row: dict[str, Any]) -> None:
        if self.console is not None:
            val = row["val_neg_elbo"]
            val_text = f"  val -ELBO {val:.2f}" if val is not None else ""
            self.progress.console.print(
                f"epoch {row['epoch']:>3}  loss {row['train_loss']:.2f}  recon {row['train_recon']:.2f}  "
                f"KL {row['train_kl']:.2f}  beta {row['beta']:.3f}{val_text}  "
                f"({row['seconds']:.1f} s, {row['images_per_second']:,.0f} img/s)"
            )


def save_checkpoint(path: Path, model: VAE, optimizer: torch.optim.Optimizer, state: TrainState, generator: torch.Generator) -> None:
    """Model, optimizer, schedule position, history and every RNG state, written atomically."""
    cuda_rng = torch.cuda.get_rng_state() if generator.device.type == "cuda" else None
    io.save_torch(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": state.epoch,
            "step": state.step,
            "history": state.history,
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng, "data": generator.get_state()},
        },
    )


def load_checkpoint(path: Path, model: VAE, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> TrainState:
    """Restore a checkpoint written by save_checkpoint (loaded with weights_only=True: data, never code)."""
    checkpoint = io.load_torch(path, generator.device)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"]["torch"].cpu())
    if checkpoint["rng"]["cuda"] is not None and generator.device.type == "cuda":
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"].cpu())
    generator.set_state(checkpoint["rng"]["data"].cpu())
    return TrainState(epoch=checkpoint["epoch"], step=checkpoint["step"], history=checkpoint["history"])


def fit(
    model: VAE,
    data: DeviceData,
    kl_weighting: KLWeighting,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    console: Console | None = None,
    objective: Objective | None = None,
) -> TrainState:
    """Train to config.epochs, checkpointing after every epoch; with `resume`, continue from the checkpoint.

    A resumed run ends with the same parameters and history (timings aside) as an uninterrupted one.
    """
    device = data.train_images.device
    generator = torch.Generator(device).manual_seed(config.seed)
    optimizer = make_optimizer(model, config.lr)
    checkpoint = run_dir / "checkpoint.pt"
    state = load_checkpoint(checkpoint, model, optimizer, generator) if resume and checkpoint.exists() else TrainState()
    steps_per_epoch = math.ceil(data.n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    step = _Step(model, objective or ELBO(), kl_weighting, optimizer, total_steps)
    with ProgressView(console, total_steps, state.step) as view:
        for epoch in range(state.epoch, config.epochs):
            row = _train_epoch(step, data, generator, config, state, epoch, view)
            row |= _validate(model, data, config)
            state.history.append(row)
            state.epoch = epoch + 1
            save_checkpoint(checkpoint, model, optimizer, state, generator)
            io.write_jsonl(run_dir / "history.jsonl", state.history)
            view.epoch_done(row)
    return state


@dataclass
class _Step:
    """Everything one optimizer step needs besides the batch."""

    model: VAE
    objective: Objective
    kl_weighting: KLWeighting
    optimizer: torch.optim.Optimizer
    total_steps: int

    def __call__(self, x: torch.Tensor, step: int) -> ELBOTerms:
        beta = self.kl_weighting.beta(step, self.total_steps)
        terms = self.objective.terms(self.model, x, beta, self.kl_weighting)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.mean().backward()
        self.optimizer.step()
        return terms


def _train_epoch(
    step: _Step,
    data: DeviceData,
    generator: torch.Generator,
    config: TrainConfig,
    state: TrainState,
    epoch: int,
    view: ProgressView,
) -> dict[str, Any]:
    """One pass over a fresh permutation of the training set; returns the epoch's history row."""
    model = step.model
    model.train()
    running = RunningLoss(data.train_images.device)
    start = time.perf_counter()
    permutation = torch.randperm(data.n_train, generator=generator, device=generator.device)
    beta = 0.0
    for index in permutation.split(config.batch_size):
        terms = step(data.train_batch(index, generator), state.step)
        beta = terms.beta
        running.add(terms, state.step)
        state.step += 1
        if state.step % POLL_EVERY == 0:
            polled = running.poll()
            if polled is not None:
                check_finite(polled, epoch)
            view.update(state.step, epoch, config.epochs, beta, polled)
    totals = running.read()  # the one sync of the epoch
    seconds = time.perf_counter() - start
    check_finite(totals, epoch)
    loss, recon, kl = (totals[:3] / totals[3]).tolist()
    return {
        "epoch": epoch + 1,
        "step": state.step,
        "train_loss": loss,
        "train_recon": recon,
        "train_kl": kl,
        "beta": beta,
        "seconds": seconds,
        "images_per_second": data.n_train / seconds,
    }


def _validate(model: VAE, data: DeviceData, config: TrainConfig) -> dict[str, Any]:
    """Validation -ELBO (beta = 1) and its terms, or None when there is no validation split."""
    if data.val_images.shape[0] == 0:
        return {"val_neg_elbo": None, "val_recon": None, "val_kl": None}
    means = elbo_means(model, data.val_images, config.eval_batch_size)
    return {"val_neg_elbo": means.neg_elbo, "val_recon": means.recon_nll, "val_kl": means.kl}
