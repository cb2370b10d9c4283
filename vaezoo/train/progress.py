"""Training's running losses and progress: per-epoch sums kept on the device and read without a sync, and
the progress bar with one line per epoch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typing_extensions import Self

from vaezoo.evaluate.console import NotebookOutput
from vaezoo.evaluate.records import HistoryRow
from vaezoo.model.vae import ELBOTerms

#: a batch's mean loss per image beyond this means the run has diverged as surely as a NaN, and is stopped the
#: same way: it is over 10^5 nats per pixel of MNIST (a Bernoulli model starts near 550 per image, a Gaussian
#: with sigma at its 1e-3 floor and every pixel off by 0.5 is near 10^8)
DIVERGED_NATS = 1e8

#: The running sums' slots on the device, and the snapshot a poll copies to the host: the sums, then the first
#: bad step. One buffer each, so that a poll is one asynchronous copy and a captured graph updates them in place.
SUMS = ("loss", "recon", "kl", "images")
SNAPSHOT = (*SUMS, "first_bad_step")
LOSS, RECON, KL, IMAGES, BAD_STEP = range(len(SNAPSHOT))


@dataclass(frozen=True)
class EpochTotals:
    """The running sums of an epoch so far, as read on the host: per-image loss, reconstruction and KL
    summed over `images`, and the first step whose loss diverged (None while none has)."""

    loss: float
    recon: float
    kl: float
    images: float
    first_bad_step: int | None

    @classmethod
    def from_snapshot(cls, values: torch.Tensor) -> EpochTotals:
        """From RunningLoss's snapshot (SNAPSHOT's layout; the first bad step is -1 while none has diverged)."""
        named = dict(zip(SNAPSHOT, values.tolist(), strict=True))
        bad = named.pop("first_bad_step")
        return cls(**named, first_bad_step=None if bad < 0 else int(bad))

    def means(self) -> tuple[float, float, float] | None:
        """(loss, recon, KL) per image, or None before any image was counted."""
        if self.images <= 0:
            return None
        return self.loss / self.images, self.recon / self.images, self.kl / self.images


class RunningLoss:
    """Per-epoch sums of the step losses, kept on the device and read without waiting on it.

    Every POLL_EVERY steps the sums are copied to the host asynchronously; the previous copy is used
    only once its CUDA event has completed, so the step loop never blocks on the GPU.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums = torch.zeros(len(SUMS), device=device)
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self._host = torch.zeros(len(SNAPSHOT), dtype=torch.float64, pin_memory=device.type == "cuda")
        self._host[BAD_STEP] = -1  # what the first poll reports, before any copy has completed: no bad step
        self._event: torch.cuda.Event | None = None

    def reset(self) -> None:
        """Start a new epoch (in place: a captured graph holds these tensors)."""
        self.sums.zero_()
        self.first_bad_step.fill_(-1)
        # the last epoch ended with a synchronous read, so no copy into the host buffer is in flight
        self._host.zero_()
        self._host[BAD_STEP] = -1
        self._event = None

    def add(self, terms: ELBOTerms, step: int | torch.Tensor) -> None:
        loss = terms.loss.detach().float()
        batch = torch.stack([loss.sum(), terms.recon_nll.detach().float().sum(), terms.kl.detach().float().sum()])
        self.sums[LOSS : KL + 1] += batch
        self.sums[IMAGES] += loss.shape[0]
        diverged = ~torch.isfinite(batch).all() | (batch[0].abs() > DIVERGED_NATS * loss.shape[0])
        bad = diverged & (self.first_bad_step < 0)
        self.first_bad_step.copy_(torch.where(bad, step, self.first_bad_step))

    def snapshot(self) -> torch.Tensor:
        """The SNAPSHOT values as one float64 tensor on the device (one copy to the host reads them all)."""
        return torch.cat([self.sums.double(), self.first_bad_step.double().unsqueeze(0)])

    def poll(self) -> EpochTotals | None:
        """The latest completed host copy of the sums, or None while the previous copy is in flight."""
        if self._event is not None and not self._event.query():
            return None
        previous = self._host.clone()
        self._host.copy_(self.snapshot(), non_blocking=True)
        if self.device.type != "cuda":
            return EpochTotals.from_snapshot(self._host)  # a CPU copy is already complete
        self._event = torch.cuda.Event()
        self._event.record()
        return EpochTotals.from_snapshot(previous)

    def read(self) -> EpochTotals:
        """A synchronous read, for the end of an epoch."""
        return EpochTotals.from_snapshot(self.snapshot().cpu())


class ProgressView:
    """A progress bar with live loss, recon, KL and beta, and one line per epoch: a live bar in a terminal,
    an output redrawn in place in Jupyter (kept there in its last state), epoch lines alone in a log file;
    silent when there is no console."""

    def __init__(self, console: Console | None, total_steps: int, done_steps: int) -> None:
        self.console = console
        notebook = console is not None and console.is_jupyter
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn(
                "loss {task.fields[loss]} recon {task.fields[recon]} KL {task.fields[kl]} beta {task.fields[beta]}"
            ),
            console=console,
            disable=console is None or notebook,  # a notebook shows the bar through its own output
            transient=True,
        )
        self.task = self.progress.add_task(
            "training", total=total_steps, completed=done_steps, loss="-", recon="-", kl="-", beta="-"
        )
        self.total_steps = total_steps
        self.notebook: NotebookOutput | None = None
        if notebook and console is not None:
            self.notebook = NotebookOutput(console, self.progress.get_renderable())

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)
        if self.notebook is not None:
            self.notebook.update(self.progress.get_renderable(), force=True)

    def update(self, step: int, epoch: int, epochs: int, beta: float, totals: EpochTotals | None) -> None:
        fields: dict[str, str] = {"beta": f"{beta:.3f}"}
        means = totals.means() if totals is not None else None
        if means is not None:
            loss, recon, kl = means
            fields |= {"loss": f"{loss:.2f}", "recon": f"{recon:.2f}", "kl": f"{kl:.2f}"}
        self.progress.update(self.task, completed=step, description=f"epoch {epoch + 1}/{epochs}", **fields)
        if self.notebook is not None:
            self.notebook.update(self.progress.get_renderable())

    def epoch_done(self, row: HistoryRow) -> None:
        if self.console is None:
            return
        self.progress.update(
            self.task,
            completed=row.step,
            description=f"epoch {row.epoch}/{round(self.total_steps * row.epoch / max(row.step, 1))}",
            loss=f"{row.train_loss:.2f}",
            recon=f"{row.train_recon:.2f}",
            kl=f"{row.train_kl:.2f}",
            beta=f"{row.beta:.3f}",
        )  # the epoch's totals, also where it was too short for a poll to show them
        if self.notebook is not None:
            self.notebook.update(self.progress.get_renderable(), force=True)
        val_text = f"  val -ELBO {row.val_neg_elbo:.2f}" if row.val_neg_elbo is not None else ""
        self.progress.console.print(
            f"epoch {row.epoch:>3}  loss {row.train_loss:.2f}  recon {row.train_recon:.2f}  "
            f"KL {row.train_kl:.2f}  beta {row.beta:.3f}{val_text}  "
            f"({row.seconds:.1f} s, {row.images_per_second:,.0f} img/s)",
            markup=False,
            highlight=False,
        )
