"""Training objectives: what the optimizer minimizes per image, given the KL weight beta."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar, Literal, Protocol

import torch
from pydantic import Field

from vaezoo.kl import KLWeighting, Weighted
from vaezoo.kl_estimate import KLEstimate
from vaezoo.model import VAE, ELBOTerms
from vaezoo.registry import Registry
from vaezoo.schema import StrictModel


class Objective(Protocol):
    def terms(self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting) -> ELBOTerms:
        """The per-image terms of the objective on a batch; `.loss` is what training minimizes."""
        ...

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        """Whether this objective can honour the KL weighting's penalty."""
        ...


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


class ELBOSpec(StrictModel):
    kind: Literal["elbo"]


@OBJECTIVES.register("elbo")
class ELBO:
    """The ELBO with one reparameterized sample per image: -log p(x|z) + beta * KL (Kingma & Welling 2014)."""

    Spec: ClassVar = ELBOSpec

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        return True

    def terms(self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting) -> ELBOTerms:
        terms = model.elbo(x)
        return replace(terms, beta=beta, loss=terms.recon_nll + weighting.penalty(terms.kl, terms.kl_per_dim, beta))


class IWAESpec(StrictModel):
    kind: Literal["iwae"]
    samples: int = Field(default=50, ge=1, le=5000, description="k, the importance samples per image")


@OBJECTIVES.register("iwae")
class IWAE:
    """The importance-weighted bound L_k = E[log (1/k) sum_i w_i] (Burda et al. 2015); k = 1 is the ELBO.

    With beta != 1 the prior ratio inside each weight is scaled by beta, so KL schedules still apply:
    log w_i = log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)). A per-dimension KL floor (free bits)
    has no place inside the weights, so the spec refuses that combination.
    """

    Spec: ClassVar = IWAESpec

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        """Only weightings whose penalty is beta times the KL: that is what scaling the prior ratio does."""
        return issubclass(weighting, Weighted)

    def __init__(self, *, samples: int) -> None:
        self.samples = samples

    def terms(self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting) -> ELBOTerms:
        features = model.encoder(x)
        log_px_z, log_prior_ratio = model.weight_terms(x, self.samples, features=features)
        bound = torch.logsumexp(log_px_z + beta * log_prior_ratio, dim=0) - math.log(self.samples)
        # reported beside the loss: the closed-form KL where the model uses it, else the k samples' mean
        closed = model.kl_estimate is KLEstimate.CLOSED_FORM
        kl_per_dim = model.prior.kl(model.posterior.distribution(features)) if closed else None
        kl = kl_per_dim.sum(-1) if kl_per_dim is not None else -log_prior_ratio.mean(0)
        return ELBOTerms(recon_nll=-log_px_z.mean(0), kl=kl, kl_per_dim=kl_per_dim, beta=beta, loss=-bound)
