"""Learning-rate schedules, set once per epoch: the rate is a function of the epoch alone, so a
resumed run follows the same schedule as an uninterrupted one."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vaezoo.core.registry import Registry

#: name -> rate(base_lr, epoch, epochs), with 0-based `epoch` of a run of `epochs`
LR_SCHEDULES: Registry[Callable[[float, int, int], float]] = Registry("learning-rate schedule")

# Burda et al. 2015, section 5: 3^i passes at 1e-3 * 10^(-i/7) for i = 0..7, 3280 passes in all.
IWAE_STAGES = 8
IWAE_EPOCHS = sum(3**i for i in range(IWAE_STAGES))


@LR_SCHEDULES.register("constant")
def constant(base: float, epoch: int, epochs: int) -> float:
    """The same rate throughout."""
    return base


@LR_SCHEDULES.register("cosine")
def cosine(base: float, epoch: int, epochs: int) -> float:
    """Cosine decay from `base` at the first epoch towards 0 at the end (Loshchilov & Hutter 2017)."""
    return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


@LR_SCHEDULES.register("iwae")
def iwae_stepped(base: float, epoch: int, epochs: int) -> float:
    """The IWAE paper's schedule: stage i lasts 3^i / 3280 of the run at base * 10^(-i/7).

    With epochs = 3280 this is exactly the paper's 1 + 3 + 9 + ... + 2187 passes.
    """
    position = epoch * IWAE_EPOCHS / epochs  # where this epoch falls on the paper's 3280-pass scale
    stage, boundary = 0, 1
    while stage < IWAE_STAGES - 1 and position >= boundary:
        stage += 1
        boundary += 3**stage
    return base * 10 ** (-stage / 7)


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every group's rate; a tensor rate (a captured CUDA graph reads it) is filled in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value
