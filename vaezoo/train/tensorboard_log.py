"""An optional TensorBoard log of a run (`train.tensorboard: true`, `pip install "vaezoo[tensorboard]"`):
the per-step scalars, each epoch's history row and prior samples, under <run>/tensorboard/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vaezoo.core.errors import VaezooError
from vaezoo.evaluate.records import HistoryRow
from vaezoo.model.vae import VAE
from vaezoo.train.scalars import ScalarRow

SAMPLES = 32
SAMPLES_SEED = 0


def require() -> None:
    """A one-line error, before anything trains, when the TensorBoard writer cannot be imported."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise VaezooError(
            'train.tensorboard needs the tensorboard package: pip install "vaezoo[tensorboard]"'
        ) from None


class TensorBoardLog:
    """Writes what an epoch added; a resumed run first drops events past its checkpoint's step."""

    def __init__(self, run_dir: Path, resume_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer: Any = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step or None)
        self.logged = resume_step

    def epoch(self, rows: list[ScalarRow], history: HistoryRow, model: VAE) -> None:
        for row in rows:
            if row.step <= self.logged:
                continue
            for name in ("loss", "recon", "kl", "grad_norm", "beta", "lr"):
                self.writer.add_scalar(f"step/{name}", getattr(row, name), row.step)
        self.logged = history.step
        for name, value in history.to_json().items():
            if name not in ("epoch", "step") and value is not None:
                self.writer.add_scalar(f"epoch/{name}", value, history.step)
        images = model.sample(SAMPLES, torch.Generator().manual_seed(SAMPLES_SEED))
        self.writer.add_images("prior samples", images.clamp(0, 1).cpu(), history.step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
