"""Training objectives: what the optimizer minimizes per image, given the KL weight beta."""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Protocol

import torch
from pydantic import Field

from vaezoo.kl import gaussian_kl
from vaezoo.model import VAE, ELBOTerms
from vaezoo.registry import Registry
from vaezoo.schema import StrictModel


class Objective(Protocol):
    def terms(self, model: VAE, x: torch.Tensor, beta: float) -> ELBOTerms:
        """The per-image terms of the objective on a batch; `.loss` is what training minimizes."""
        ...


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


class ELBOSpec(StrictModel):
    kind: Literal["elbo"]


@OBJECTIVES.register("elbo")
class ELBO:
    """The ELBO with one reparameterized sample per image: -log p(x|z) + beta * KL (Kingma & Welling 2014)."""

    Spec: ClassVar = ELBOSpec

    def terms(self, model: VAE, x: torch.Tensor, beta: float) -> ELBOTerms:
        return model.elbo(x, beta=beta)


class IWAESpec(StrictModel):
    kind: Literal["iwae"]
    samples: int = Field(default=50, ge=1, le=5000, description="k, the importance samples per image")


@OBJECTIVES.register("iwae")
class IWAE:
    """The importance-weighted bound L_k = E[log (1/k) sum_i w_i] (Burda et al. 2015); k = 1 is the ELBO.

    With beta != 1 the prior ratio inside each weight is scaled by beta, so KL weightings still apply:
    log w_i = log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)).
    """

    Spec: ClassVar = IWAESpec

    def __init__(self, *, samples: int) -> None:
        self.samples = samples

    def terms(self, model: VAE, x: torch.Tensor, beta: float) -> ELBOTerms:
        mu, logvar = model.encode(x)
        log_px_z, log_prior_ratio = model.weight_terms(x, self.samples, posterior=(mu, logvar))
        bound = torch.logsumexp(log_px_z + beta * log_prior_ratio, dim=0) - math.log(self.samples)
        return ELBOTerms(recon_nll=-log_px_z.mean(0), kl=gaussian_kl(mu, logvar), beta=beta, bound_loss=-bound)
