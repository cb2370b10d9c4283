"""InfoVAE (Zhao et al. 2017): the ELBO with part of its KL traded for a divergence between the
aggregate posterior q(z) and the prior, measured by the maximum mean discrepancy (MMD) on the batch.

loss = -log p(x|z) + (1 - alpha) * beta * KL(q(z|x) || p(z)) + (alpha + lambda - 1) * MMD^2(q(z), p(z))

alpha = 1 drops the per-image KL (the "MMD-VAE"); alpha = 0, lambda = 1 is the ELBO plus nothing. The
MMD is a batch quantity, counted in every image's loss; its prior samples come from the prior itself,
so any prior works. Not a bound on -log p(x) once lambda > 1 - alpha.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives.base import OBJECTIVES, Objective

Kernel = Literal["rbf", "imq"]


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: Kernel, scale: float) -> torch.Tensor:
    """k(a_i, b_j) for every pair, (N, M), with c = 2 * D * scale^2 (Tolstikhin et al. 2018):
    rbf exp(-|a - b|^2 / c), imq c / (c + |a - b|^2)."""
    c = 2 * a.shape[-1] * scale**2
    distances = torch.cdist(a, b).square()
    return torch.exp(-distances / c) if kernel == "rbf" else c / (c + distances)


def mmd_squared(z: torch.Tensor, prior_z: torch.Tensor, kernel: Kernel, scale: float) -> torch.Tensor:
    """The unbiased estimate of MMD^2 between the distributions of the rows of z and of prior_z: the
    within-sample means leave out each row's kernel with itself. Zero where either has fewer than 2
    rows (an epoch's last batch may hold one image), which says nothing about the difference."""
    n, m = len(z), len(prior_z)
    if n < 2 or m < 2:
        return z.new_zeros(())
    within_q = kernel_matrix(z, z, kernel, scale)
    within_p = kernel_matrix(prior_z, prior_z, kernel, scale)
    same_q = (within_q.sum() - within_q.diagonal().sum()) / (n * (n - 1))
    same_p = (within_p.sum() - within_p.diagonal().sum()) / (m * (m - 1))
    return same_q + same_p - 2 * kernel_matrix(z, prior_z, kernel, scale).mean()


class KernelFields(StrictModel):
    """The MMD kernel's settings, shared by every objective that measures q(z) against p(z) with it."""

    kernel: Kernel = Field(default="imq", description="rbf or imq (inverse multiquadratic, heavier tails)")
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="the kernel's length scale per latent dimension")


class MMDSpec(KernelFields):
    kind: Literal["mmd"]
    alpha: float = Field(default=1.0, ge=0.0, le=1.0, description="share of the per-image KL dropped (1: none kept)")
    lam: float = Field(default=1000.0, ge=0.0, le=1e6, description="lambda, the MMD's weight is alpha + lambda - 1")


@OBJECTIVES.register("mmd")
class InfoVAE(Objective):
    """The InfoVAE objective with an MMD divergence between q(z) and p(z) on each batch."""

    Spec: ClassVar = MMDSpec
    model_title: ClassVar[str] = "InfoVAE"
    loss_title: ClassVar[str] = "the InfoVAE objective (the ELBO with an MMD between q(z) and p(z))"
    is_bound: ClassVar[bool] = False

    def __init__(self, *, alpha: float, lam: float, kernel: Kernel, scale: float) -> None:
        self.alpha, self.lam, self.kernel, self.scale = alpha, lam, kernel, scale

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        draw = model.latent.draw(model.encoder(x))
        recon_nll = -model.likelihood.log_prob(x, model.decode_latent(draw.z))
        kl, kl_per_dim = model.latent.kl_terms(draw)
        prior_z = model.latent.sample(len(x)).to(draw.z.dtype)
        mmd = mmd_squared(draw.z, prior_z, self.kernel, self.scale)
        penalty = (1 - self.alpha) * weighting.penalty(kl, kl_per_dim, beta, step=step)
        loss = recon_nll + penalty + (self.alpha + self.lam - 1) * mmd
        return ELBOTerms(recon_nll=recon_nll, kl=kl, kl_per_dim=kl_per_dim, beta=beta, loss=loss)
