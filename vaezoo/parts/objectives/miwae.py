"""Tighter is not always better (Rainforth et al. 2018): the importance-weighted bound's signal to
noise for the encoder's gradient falls as k grows; MIWAE and CIWAE trade some tightness back for it.

- `miwae`: the mean of M independent IWAE bounds of K samples each (M = 1 is IWAE, K = 1 the ELBO
  with M samples).
- `ciwae`: the convex combination c * ELBO + (1 - c) * IWAE_K over the same K samples.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting, Weighted
from vaezoo.parts.objectives.base import OBJECTIVES, Objective
from vaezoo.parts.objectives.iwae import importance_weights, log_mean_exp


class MIWAESpec(StrictModel):
    kind: Literal["miwae"]
    outer: int = Field(default=8, ge=1, le=1000, description="M, the independent bounds averaged")
    samples: int = Field(default=8, ge=1, le=5000, description="K, the importance samples inside each bound")


@OBJECTIVES.register("miwae")
class MIWAE(Objective):
    """-(1/M) sum_m log (1/K) sum_k w_mk, from M * K draws per image; beta scales the prior ratio
    inside each weight, as for IWAE."""

    Spec: ClassVar = MIWAESpec
    model_title: ClassVar[str] = "MIWAE"
    loss_title: ClassVar[str] = "the MIWAE bound (M IWAE bounds of K samples, averaged)"

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        return issubclass(weighting, Weighted)

    def __init__(self, *, outer: int, samples: int) -> None:
        self.outer, self.samples = outer, samples

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        weights = importance_weights(model, x, self.outer * self.samples, beta)
        bounds = log_mean_exp(weights.log_w.unflatten(0, (self.outer, self.samples)), dim=1)  # (M, B)
        return weights.terms(-bounds.mean(0), beta)


class CIWAESpec(StrictModel):
    kind: Literal["ciwae"]
    mix: float = Field(default=0.5, ge=0.0, le=1.0, description="c, the ELBO's share (1: the ELBO, 0: IWAE)")
    samples: int = Field(default=8, ge=1, le=5000, description="K, the importance samples per image")


@OBJECTIVES.register("ciwae")
class CIWAE(Objective):
    """-(c * mean_k log w_k + (1 - c) * log (1/K) sum_k w_k) over the same K draws per image."""

    Spec: ClassVar = CIWAESpec
    model_title: ClassVar[str] = "CIWAE"
    loss_title: ClassVar[str] = "the CIWAE bound (the ELBO and the IWAE bound combined)"

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        return issubclass(weighting, Weighted)

    def __init__(self, *, mix: float, samples: int) -> None:
        self.mix, self.samples = mix, samples

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        weights = importance_weights(model, x, self.samples, beta)
        elbo, iwae = weights.log_w.mean(0), log_mean_exp(weights.log_w)
        return weights.terms(-(self.mix * elbo + (1 - self.mix) * iwae), beta)
