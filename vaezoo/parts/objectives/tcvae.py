"""beta-TCVAE (Chen et al. 2018): the ELBO's KL split, at the sampled z, into the index-code mutual
information, the total correlation of q(z) and the dimension-wise KL, each weighted on its own:

loss = -log p(x|z) + beta_t * (alpha * MI + tc * TC + gamma * DW), where
MI = log q(z|x) - log q(z), TC = log q(z) - sum_d log q(z_d), DW = sum_d log q(z_d) - log p(z),

so that MI + TC + DW = log q(z|x) - log p(z), the one-sample KL. The aggregate posterior
q(z) = (1/N) sum_n q(z|x_n) over the N training images is estimated on the batch by minibatch
weighted sampling (`mws`) or its stratified form (`mss`, the paper's lower-variance one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian, gaussian_log_density
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting, Weighted
from vaezoo.parts.objectives.base import OBJECTIVES, Objective

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior
    from vaezoo.parts.priors import Prior

Sampling = Literal["mss", "mws"]


def log_importance_weights(batch: int, dataset_size: int, sampling: Sampling) -> torch.Tensor:
    """log w_ij, (batch, batch), with log q(z_i) ~ logsumexp_j [log q(z_i|x_j) + log w_ij].

    mws: every w_ij = 1 / (N B). mss (the paper's appendix): row i weighs its own image 1/N, the next
    one (N - M) / (N M) and the other M - 1 images 1 / M, with M = B - 1, so each row sums to 1. A
    batch of one image has no other to stratify by and takes mws.
    """
    if sampling == "mws" or batch < 2:
        return torch.full((batch, batch), -math.log(dataset_size * batch), dtype=torch.float64)
    m = batch - 1
    weights = torch.full((batch, batch), 1.0 / m, dtype=torch.float64)
    rows = torch.arange(batch)
    weights[rows, (rows + 1) % batch] = (dataset_size - m) / (dataset_size * m)
    weights[rows, rows] = 1.0 / dataset_size
    return weights.log()


@dataclass(frozen=True)
class KLParts:
    """The one-sample KL's three parts per image, (B,) each: MI + TC + DW = log q(z|x) - log p(z)."""

    mutual_information: torch.Tensor
    total_correlation: torch.Tensor
    dimension_wise: torch.Tensor


def decompose(
    q: DiagonalGaussian, z: torch.Tensor, log_q: torch.Tensor, log_p: torch.Tensor, log_w: torch.Tensor
) -> KLParts:
    """The parts at the batch's draws z (B, D) from the batch's posteriors q, with log q(z|x) = `log_q`,
    log p(z) = `log_p` and the batch's log importance weights `log_w` (B, B)."""
    per_dim = gaussian_log_density(z.unsqueeze(1), q.mu.unsqueeze(0), q.logvar.unsqueeze(0))  # (B_i, B_j, D)
    log_w = log_w.to(per_dim)
    log_qz = torch.logsumexp(per_dim.sum(-1) + log_w, dim=1)
    log_marginals = torch.logsumexp(per_dim + log_w.unsqueeze(-1), dim=1).sum(-1)
    return KLParts(log_q - log_qz, log_qz - log_marginals, log_marginals - log_p)


class TCVAESpec(StrictModel):
    kind: Literal["tcvae"]
    tc: float = Field(default=6.0, ge=0.0, le=1000.0, description="weight of the total correlation (the paper's beta)")
    alpha: float = Field(default=1.0, ge=0.0, le=1000.0, description="weight of the index-code mutual information")
    gamma: float = Field(default=1.0, ge=0.0, le=1000.0, description="weight of the dimension-wise KL")
    sampling: Sampling = Field(default="mss", description="q(z) on the batch: mss (stratified) or mws")


@OBJECTIVES.register("tcvae")
class BetaTCVAE(Objective):
    """-log p(x|z) + beta_t (alpha MI + tc TC + gamma DW) with one reparameterized z per image; the
    KL weighting's beta_t scales all three (a warm-up, say). alpha = tc = gamma = 1 is the ELBO."""

    Spec: ClassVar = TCVAESpec
    model_title: ClassVar[str] = "β-TCVAE"
    loss_title: ClassVar[str] = "the β-TCVAE objective (the ELBO's KL decomposed and its parts reweighted)"
    is_bound: ClassVar[bool] = False  # a bound only where every weight is 1
    needs_dataset_size: ClassVar[bool] = True

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        return issubclass(weighting, Weighted)

    @classmethod
    def refuses(cls, prior: type[Prior], posterior: type[Posterior]) -> str | None:
        if not posterior.is_base_gaussian:
            return "needs a diagonal Gaussian posterior, whose density at other images' draws gives q(z)"
        return None

    def __init__(self, *, tc: float, alpha: float, gamma: float, sampling: Sampling, dataset_size: int) -> None:
        self.tc, self.alpha, self.gamma, self.sampling, self.dataset_size = tc, alpha, gamma, sampling, dataset_size
        # per batch size and device, made once: a captured CUDA graph must find them already on the device
        self._log_w: dict[tuple[int, torch.device], torch.Tensor] = {}

    def log_weights(self, batch: int, device: torch.device) -> torch.Tensor:
        """The batch's log importance weights on `device`, (batch, batch)."""
        key = (batch, device)
        if key not in self._log_w:
            self._log_w[key] = log_importance_weights(batch, self.dataset_size, self.sampling).to(device)
        return self._log_w[key]

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        draw = model.latent.draw(model.encoder(x))
        recon_nll = -model.likelihood.log_prob(x, model.decode_latent(draw.z))
        log_w = self.log_weights(len(x), x.device)
        density = model.latent.density()
        parts = decompose(draw.base, draw.z, draw.log_q, density.log_prob(draw.z), log_w)
        weighted = (
            self.alpha * parts.mutual_information
            + self.tc * parts.total_correlation
            + self.gamma * parts.dimension_wise
        )
        kl, kl_per_dim = model.latent.kl_terms(draw, density)
        return ELBOTerms(recon_nll=recon_nll, kl=kl, kl_per_dim=kl_per_dim, beta=beta, loss=recon_nll + beta * weighted)
