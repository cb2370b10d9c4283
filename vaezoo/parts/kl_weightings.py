"""KL weightings: the schedule of beta and the penalty the KL makes in the training loss."""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Protocol

import torch
from pydantic import Field, model_validator

from vaezoo.core.registry import Registry
from vaezoo.core.schema import StrictModel


class KLWeighting(Protocol):
    """How the KL term enters the training loss: its weight beta_t, and the penalty it makes."""

    def beta(self, step: int, total_steps: int) -> float:
        """beta at 0-based `step` of a run of `total_steps` optimizer steps; always in [0, max beta]."""
        ...

    #: True when the penalty reads the KL per dimension, which only a closed-form KL has.
    needs_kl_per_dim: ClassVar[bool]

    def penalty(
        self, kl: torch.Tensor, kl_per_dim: torch.Tensor | None, beta: float, *, step: int | torch.Tensor = 0
    ) -> torch.Tensor:
        """The KL part of each image's loss, from the batch's KL per image (B,) and, where the prior
        has a closed form, per dimension (B, D): shape (B,). `step` is the run's 0-based optimizer step
        (a device tensor inside a captured CUDA graph), for a penalty that moves with it (capacity)."""
        ...


class Weighted:
    """The usual penalty: beta times the KL summed over dimensions, image by image."""

    needs_kl_per_dim = False

    def penalty(
        self, kl: torch.Tensor, kl_per_dim: torch.Tensor | None, beta: float, *, step: int | torch.Tensor = 0
    ) -> torch.Tensor:
        return beta * kl


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

    needs_kl_per_dim = True

    def penalty(
        self, kl: torch.Tensor, kl_per_dim: torch.Tensor | None, beta: float, *, step: int | torch.Tensor = 0
    ) -> torch.Tensor:
        if kl_per_dim is None:
            raise ValueError("free bits needs the KL per dimension, which only a closed-form KL gives")
        floored = kl_per_dim.mean(0).clamp(min=self.nats).sum()
        return (beta * floored).expand(kl_per_dim.shape[0])


class CapacitySpec(StrictModel):
    kind: Literal["capacity"]
    # The paper's gamma is `beta`, as every weighting's weight is (sweeps, reports and --set kl.beta read
    # it). MNIST defaults, not the paper's dSprites ones (gamma 1000, 25 nats over 100000 steps): gamma
    # well above the few nats of reconstruction a nat of KL buys on MNIST, so the KL tracks C; C ends at
    # about the KL of a plain 20-dimensional VAE (26 nats), reached in 46 epochs of 50000 images at 128.
    beta: float = Field(default=100.0, ge=0.0, le=1000.0, description="gamma, the weight of |KL - C| (the paper: 1000)")
    c_min: float = Field(default=0.0, ge=0.0, le=10000.0, description="capacity C at step 0, in nats")
    c_max: float = Field(default=25.0, ge=0.0, le=10000.0, description="capacity C from `steps` on, in nats")
    steps: int = Field(default=18000, ge=1, le=10**9, description="optimizer steps over which C rises linearly")

    @model_validator(mode="after")
    def _rising(self) -> CapacitySpec:
        if self.c_max < self.c_min:
            raise ValueError(f"c_max ({self.c_max}) must be at least c_min ({self.c_min})")
        return self


@KL_WEIGHTINGS.register("capacity")
class Capacity:
    """Capacity annealing (Burgess et al. 2018, "Understanding disentangling in beta-VAE"): the penalty
    beta * |KL - C(t)| (the paper's gamma) pulls each image's KL toward a capacity C(t) that rises linearly from `c_min`
    to `c_max` over `steps` optimizer steps, so the posterior gains information at a controlled pace.

    beta_t is beta at every step (the weight of the penalty); the reported KL stays the true one. Not a
    beta times the KL, so the objectives that scale the prior ratio by beta (IWAE's family, beta-TCVAE)
    refuse it.
    """

    Spec: ClassVar = CapacitySpec
    needs_kl_per_dim = False

    def __init__(self, *, beta: float, c_min: float, c_max: float, steps: int) -> None:
        self.max_beta = beta
        self.c_min, self.c_max, self.steps = c_min, c_max, steps

    def beta(self, step: int, total_steps: int) -> float:
        return self.max_beta

    def capacity(self, step: int | torch.Tensor) -> float | torch.Tensor:
        """C at `step`: c_min at 0, c_max from `steps` on, linear between; a tensor for a tensor step
        (no host sync inside a captured graph)."""
        if isinstance(step, torch.Tensor):
            fraction = (step / self.steps).clamp(max=1.0)
        else:
            fraction = min(step / self.steps, 1.0)
        return self.c_min + (self.c_max - self.c_min) * fraction

    def penalty(
        self, kl: torch.Tensor, kl_per_dim: torch.Tensor | None, beta: float, *, step: int | torch.Tensor = 0
    ) -> torch.Tensor:
        return beta * (kl - self.capacity(step)).abs()
