"""Per-step scalars: loss, reconstruction, KL and gradient norm averaged over windows of `log_every`
steps (a window also ends with its epoch), with beta and the learning rate, for curves finer than
one point an epoch. Sums stay on the device; each closed window is copied to the host without
waiting, so the step loop (a captured CUDA graph too) never syncs."""

from __future__ import annotations

import csv
import io as stdio
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vaezoo.core import io
from vaezoo.model.vae import ELBOTerms


@dataclass(frozen=True)
class ScalarRow:
    """One window of steps, ending at `step` (per image, nats; the gradient norm is the L2 norm of all
    gradients of the mean loss, averaged over the window's steps)."""

    step: int
    epoch: int
    steps: int
    loss: float
    recon: float
    kl: float
    grad_norm: float
    beta: float
    lr: float


class StepWindow:
    """Device-side sums over the current window: loss, recon, KL, gradient norm and steps."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(5, device=device)

    def add(self, terms: ELBOTerms, grad_norm: torch.Tensor) -> None:
        """In the step itself (graph-safe: in place, no host read)."""
        means = [terms.loss.detach().float().mean(), terms.recon_nll.detach().float().mean()]
        means += [terms.kl.detach().float().mean(), grad_norm.float(), torch.ones((), device=self.sums.device)]
        self.sums += torch.stack(means)


class ScalarLog:
    """Closed windows waiting for their asynchronous copies; finished ones are appended to `rows`
    (a run's list of rows, which its checkpoint holds)."""

    def __init__(self, window: StepWindow, rows: list[ScalarRow]) -> None:
        self.window = window
        self.rows = rows
        self._pending: list[tuple[tuple[int, int, float, float], torch.Tensor]] = []

    def close(self, step: int, epoch: int, beta: float, lr: float) -> None:
        """End the window at `step`: queue its sums for the host and start a new one."""
        sums = self.window.sums
        host = torch.empty(5, dtype=torch.float32, pin_memory=sums.device.type == "cuda")
        host.copy_(sums, non_blocking=True)
        sums.zero_()  # ordered after the copy on the same stream
        self._pending.append(((step, epoch, beta, lr), host))

    def collect(self) -> None:
        """Append every queued window to `rows`; call after a sync (the end of an epoch), when all copies are done."""
        for (step, epoch, beta, lr), host in self._pending:
            loss, recon, kl, grad_norm, steps = host.tolist()
            n = max(steps, 1.0)
            self.rows.append(ScalarRow(step, epoch, int(steps), loss / n, recon / n, kl / n, grad_norm / n, beta, lr))
        self._pending.clear()


def grad_norm(parameters: list[torch.nn.Parameter], device: torch.device) -> torch.Tensor:
    """The L2 norm of every gradient together (0 where none exists)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros((), device=device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def write_csv(path: Path, rows: list[ScalarRow]) -> None:
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f for f in ScalarRow.__dataclass_fields__])
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    io.write_text(path, buffer.getvalue())
