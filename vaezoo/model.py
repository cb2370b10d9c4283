"""The VAE: encode -> reparameterize -> decode, and its ELBO as typed per-image terms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vaezoo.kl import gaussian_kl_per_dim
from vaezoo.likelihoods import Likelihood

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ELBOTerms:
    """One ELBO evaluation, per image, in nats (summed over pixels and latent dimensions).

    `recon_nll` = -log p(x|z) for one reparameterized z ~ q(z|x); `kl_per_dim` = KL(q(z_d|x) || p(z_d))
    in closed form, (B, D); `beta` weights the KL in the training loss.
    """

    recon_nll: torch.Tensor
    kl_per_dim: torch.Tensor
    beta: float
    #: What training minimizes per image: -log p(x|z) + beta * KL for the plain ELBO; the objective's
    #: own form otherwise (a free-bits floor on the KL, IWAE's -L_k).
    loss: torch.Tensor

    @property
    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per image, summed over the latent dimensions."""
        return self.kl_per_dim.sum(-1)

    @property
    def neg_elbo(self) -> torch.Tensor:
        """-ELBO per image (beta = 1 whatever the training beta): an upper bound on -log p(x)."""
        return self.recon_nll + self.kl


class VAE(nn.Module):
    """A Gaussian-posterior VAE with prior N(0, I) and any encoder, decoder and likelihood."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, latent_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) as (mu, logvar), each (B, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters for each z, shaped (*z.shape[:-1], C, H, W)."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): differentiable in mu and logvar."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None) -> ELBOTerms:
        """The ELBO's terms for a batch, one z sample per image."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        recon_nll = -self.likelihood.log_prob(x, self.decode(z))
        kl_per_dim = gaussian_kl_per_dim(mu, logvar)
        return ELBOTerms(recon_nll=recon_nll, kl_per_dim=kl_per_dim, beta=beta, loss=recon_nll + beta * kl_per_dim.sum(-1))

    def log_weights(
        self,
        x: torch.Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k|x) for `samples` draws z_k ~ q(z|x): shape (samples, B).

        Their logsumexp over k minus log(samples) is the importance-weighted bound L_K <= log p(x).
        Pass `posterior` = encode(x) to reuse it across chunks of samples.
        """
        log_px_z, log_prior_ratio = self.weight_terms(x, samples, generator, posterior)
        return log_px_z + log_prior_ratio

    def weight_terms(
        self,
        x: torch.Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z_k), log p(z_k) - log q(z_k|x)) for `samples` draws z_k ~ q(z|x), each (samples, B)."""
        mu, logvar = posterior if posterior is not None else self.encode(x)
        z = self.reparameterize(mu.expand(samples, *mu.shape), logvar.expand(samples, *logvar.shape), generator)
        log_px_z = self.likelihood.log_prob(x, self.decode(z))
        log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
        log_qz = -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)
        return log_px_z, log_pz - log_qz

    @torch.inference_mode()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images decoded from n draws of the prior: the likelihood's mean, (n, C, H, W)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z))
