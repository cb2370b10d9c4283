"""The closed-form Gaussian KL and the KL weightings (beta schedules) that scale it during training."""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Protocol

import torch
from pydantic import Field

from vaezoo.registry import Registry
from vaezoo.schema import StrictModel


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each latent dimension, in nats: shape of `mu`."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image, summed over the latent dimensions (last axis), in nats."""
    return gaussian_kl_per_dim(mu, logvar).sum(-1)


class KLWeighting(Protocol):
    """How the KL term enters the training loss: its weight beta_t, and the penalty it makes."""

    def beta(self, step: int, total_steps: int) -> float:
        """beta at 0-based `step` of a run of `total_steps` optimizer steps; always in [0, max beta]."""
        ...

    def penalty(self, kl_per_dim: torch.Tensor, beta: float) -> torch.Tensor:
        """The KL part of each image's loss, from the per-dimension KL of a batch (B, D): shape (B,)."""
        ...


class Weighted:
    """The usual penalty: beta times the KL summed over dimensions, image by image."""

    def penalty(self, kl_per_dim: torch.Tensor, beta: float) -> torch.Tensor:
        return beta * kl_per_dim.sum(-1)


KL_WEIGHTINGS: Registry[type[KLWeighting]] = Registry("KL weighting")

Beta = Field(default=1.0, ge=0.0, le=1000.0, description="weight of the KL term (1 = the plain VAE)")


class ConstantSpec(StrictModel):
    kind: Literal["constant"]
    beta: float = Beta


@KL_WEIGHTINGS.register("constant")
class Constant(Weighted):
    """beta-VAE (Higgins et al. 2017): the same beta at every step; beta = 1 is the plain VAE."""

    Spec: ClassVar = ConstantSpec

    def __init__(self, *, beta: float) -> None:
        self.max_beta = beta

    def beta(self, step: int, total_steps: int) -> float:
        return self.max_beta


class LinearSpec(StrictModel):
    kind: Literal["linear"]
    beta: float = Beta
    warmup_steps: int = Field(default=5000, ge=1, le=10**9, description="steps to rise from 0 to beta")


@KL_WEIGHTINGS.register("linear")
class Linear(Weighted):
    """KL warm-up (Bowman et al. 2016): beta rises linearly from 0 at step 0 to beta at `warmup_steps`."""

    Spec: ClassVar = LinearSpec

    def __init__(self, *, beta: float, warmup_steps: int) -> None:
        self.max_beta = beta
        self.warmup_steps = warmup_steps

    def beta(self, step: int, total_steps: int) -> float:
        return self.max_beta * min(1.0, step / self.warmup_steps)


class CyclicalSpec(StrictModel):
    kind: Literal["cyclical"]
    beta: float = Beta
    cycles: int = Field(default=4, ge=1, le=10**6, description="number of cycles over the whole run")
    ratio: float = Field(default=0.5, gt=0.0, le=1.0, description="fraction of each cycle spent rising")


@KL_WEIGHTINGS.register("cyclical")
class Cyclical(Weighted):
    """Cyclical annealing (Fu et al. 2019): the run is split into `cycles` equal periods; in each,
    beta rises linearly from 0 over the first `ratio` of the period, then stays at beta."""

    Spec: ClassVar = CyclicalSpec

    def __init__(self, *, beta: float, cycles: int, ratio: float) -> None:
        self.max_beta = beta
        self.cycles = cycles
        self.ratio = ratio

    def period(self, total_steps: int) -> float:
        """Length of one cycle in steps."""
        return max(total_steps, 1) / self.cycles

    def beta(self, step: int, total_steps: int) -> float:
        period = self.period(total_steps)
        phase = math.fmod(step, period) / period
        return self.max_beta * min(1.0, phase / self.ratio)


class FreeBitsSpec(StrictModel):
    kind: Literal["free_bits"]
    beta: float = Beta
    nats: float = Field(default=0.25, ge=0.0, le=100.0, description="KL floor per latent dimension, in nats")


@KL_WEIGHTINGS.register("free_bits")
class FreeBits:
    """Free bits (Kingma et al. 2016): each dimension's KL, averaged over the batch, counts as at least
    `nats`, so the optimizer gains nothing by pushing a dimension below it (against posterior collapse).

    The penalty is beta * sum_d max(nats, mean_batch KL_d), the same for every image of the batch; the
    reported KL stays the true one.
    """

    Spec: ClassVar = FreeBitsSpec

    def __init__(self, *, beta: float, nats: float) -> None:
        self.max_beta = beta
        self.nats = nats

    def beta(self, step: int, total_steps: int) -> float:
        return self.max_beta

    def penalty(self, kl_per_dim: torch.Tensor, beta: float) -> torch.Tensor:
        floored = kl_per_dim.mean(0).clamp(min=self.nats).sum()
        return (beta * floored).expand(kl_per_dim.shape[0])
