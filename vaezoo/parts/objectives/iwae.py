"""The importance-weighted bound (Burda et al. 2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting, Weighted
from vaezoo.parts.objectives.base import OBJECTIVES, Objective


class IWAESpec(StrictModel):
    kind: Literal["iwae"]
    samples: int = Field(default=50, ge=1, le=5000, description="k, the importance samples per image")


@OBJECTIVES.register("iwae")
class IWAE(Objective):
    """The importance-weighted bound L_k = E[log (1/k) sum_i w_i] (Burda et al. 2015); k = 1 is the ELBO.

    With beta != 1 the prior ratio inside each weight is scaled by beta, so KL schedules still apply:
    log w_i = log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)). A per-dimension KL floor (free bits)
    has no place inside the weights, so the spec refuses that combination.
    """

    Spec: ClassVar = IWAESpec
    model_title: ClassVar[str] = "IWAE"
    loss_title: ClassVar[str] = "the IWAE bound"

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        """Only weightings whose penalty is beta times the KL: that is what scaling the prior ratio does."""
        return issubclass(weighting, Weighted)

    def __init__(self, *, samples: int) -> None:
        self.samples = samples

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        weights = importance_weights(model, x, self.samples, beta)
        return weights.terms(-log_mean_exp(weights.log_w), beta)


@dataclass(frozen=True)
class Weights:
    """`samples` importance weights per image, log w = log p(x|z) + beta (log p(z) - log q(z|x)),
    (samples, B), with what is reported beside a loss built from them."""

    log_w: torch.Tensor
    recon_nll: torch.Tensor  # the samples' mean of -log p(x|z), (B,)
    kl: torch.Tensor  # the closed-form KL where the model uses it, else the samples' mean of log q - log p
    kl_per_dim: torch.Tensor | None

    def terms(self, loss: torch.Tensor, beta: float | torch.Tensor) -> ELBOTerms:
        return ELBOTerms(recon_nll=self.recon_nll, kl=self.kl, kl_per_dim=self.kl_per_dim, beta=beta, loss=loss)


def importance_weights(model: VAE, x: torch.Tensor, samples: int, beta: float | torch.Tensor) -> Weights:
    """The log importance weights of `samples` draws z ~ q(z|x) per image, and the reported terms."""
    features = model.encoder(x)
    log_px_z, log_prior_ratio = model.weight_terms(x, samples, features=features)
    kl, kl_per_dim = model.latent.weights_kl(features, log_prior_ratio)
    return Weights(log_px_z + beta * log_prior_ratio, -log_px_z.mean(0), kl, kl_per_dim)


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/n) sum_i exp(log_w_i) along `dim`: the importance-weighted bound of n weights."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])
