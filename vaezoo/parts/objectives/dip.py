"""DIP-VAE (Kumar et al. 2018): the ELBO plus a penalty that moves a covariance of the batch's
latents toward the identity, so that the aggregate posterior's dimensions decorrelate.

penalty = lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2, with
C = Cov_x[mu(x)] for DIP-VAE-I, and C = Cov_x[mu(x)] + E_x[diag sigma^2(x)] = Cov_q(z)[z] for
DIP-VAE-II. A batch quantity, counted in every image's loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives.base import OBJECTIVES, Objective

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior
    from vaezoo.parts.priors import Prior

Variant = Literal["i", "ii"]


def dip_covariance(q: DiagonalGaussian, variant: Variant) -> torch.Tensor:
    """The covariance that DIP-VAE-I (of the posterior means) or -II (of q(z)) drives toward I, (D, D)."""
    centered = q.mu - q.mu.mean(0)
    covariance = centered.T @ centered / max(len(q.mu), 1)
    if variant == "ii":
        covariance = covariance + torch.diag(q.logvar.exp().mean(0))
    return covariance


def dip_penalty(covariance: torch.Tensor, off_diagonal: float, diagonal: float) -> torch.Tensor:
    """lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2."""
    diag = covariance.diagonal()
    return off_diagonal * (covariance.square().sum() - diag.square().sum()) + diagonal * (diag - 1).square().sum()


class DIPSpec(StrictModel):
    kind: Literal["dip"]
    variant: Variant = Field(default="i", description="i: the posterior means' covariance; ii: q(z)'s")
    off_diagonal: float = Field(default=10.0, ge=0.0, le=1e6, description="lambda_od")
    diagonal: float = Field(default=100.0, ge=0.0, le=1e6, description="lambda_d (the paper: 10 lambda_od for I)")


@OBJECTIVES.register("dip")
class DIPVAE(Objective):
    """-log p(x|z) + the KL weighting's penalty + the DIP penalty on the batch."""

    Spec: ClassVar = DIPSpec
    model_title: ClassVar[str] = "DIP-VAE"
    loss_title: ClassVar[str] = "the DIP-VAE objective (the ELBO with a penalty on the covariance of q(z))"
    is_bound: ClassVar[bool] = False

    @classmethod
    def refuses(cls, prior: type[Prior], posterior: type[Posterior]) -> str | None:
        if not posterior.is_base_gaussian:
            return "needs a diagonal Gaussian posterior, whose mean and variance the penalty reads"
        return None

    def __init__(self, *, variant: Variant, off_diagonal: float, diagonal: float) -> None:
        self.variant, self.off_diagonal, self.diagonal = variant, off_diagonal, diagonal

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        draw = model.latent.draw(model.encoder(x))
        recon_nll = -model.likelihood.log_prob(x, model.decode_latent(draw.z))
        kl, kl_per_dim = model.latent.kl_terms(draw)
        penalty = dip_penalty(dip_covariance(draw.base, self.variant), self.off_diagonal, self.diagonal)
        loss = recon_nll + weighting.penalty(kl, kl_per_dim, beta, step=step) + penalty
        return ELBOTerms(recon_nll=recon_nll, kl=kl, kl_per_dim=kl_per_dim, beta=beta, loss=loss)
