"""The Gaussian densities every part shares: the log-density, its constant, the closed-form KL
against N(0, I), and the diagonal Gaussian that a posterior hands to the rest of the model."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) elementwise, in nats (broadcasting; no sum)."""
    return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI)


def standard_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) elementwise, in nats."""
    return -0.5 * (z.square() + LOG_2PI)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each latent dimension, in nats: shape of `mu`."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def gaussian_pair_kl(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """KL(q || p) of two diagonal Gaussians for each dimension, in nats (broadcasting; no sum)."""
    return 0.5 * (p.logvar - q.logvar + (q.logvar.exp() + (q.mu - p.mu).square()) * torch.exp(-p.logvar) - 1.0)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image, summed over the latent dimensions (last axis), in nats."""
    return gaussian_kl_per_dim(mu, logvar).sum(-1)


class DiagonalGaussian(NamedTuple):
    """N(mu, diag(exp(logvar))), each (B, D); unpacks as `mu, logvar`."""

    mu: torch.Tensor
    logvar: torch.Tensor

    def rsample(self, samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, differentiable in mu and logvar: (B, D), or (samples, B, D)."""
        mu, logvar = self
        if samples is not None:
            mu, logvar = mu.expand(samples, *mu.shape), logvar.expand(samples, *logvar.shape)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z), summed over the latent dimensions: z's leading shape."""
        return gaussian_log_density(z, self.mu, self.logvar).sum(-1)


def log_mixture(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log (1/N) sum_n N(z; mu_n, exp(logvar_n)) for each row of z, in float64.

    The Gaussian exponent is a quadratic form in z, so every pair's log-density comes from one
    matrix product instead of an elementwise (rows, N, D) tensor:
    sum_d (z_d - mu_nd)^2 / s_nd = [z^2, z, 1] . [1 / s_n, -2 mu_n / s_n, sum_d mu_nd^2 / s_nd + log s_nd].
    The -1/2 is folded into the right factor so that logsumexp reads the product directly. The
    expansion cancels where z is near mu_n and the variance is small, so it is taken in float64
    (which autocast leaves alone: a bf16 training step does not round it).
    """
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    precision = torch.exp(-logvar)
    constant = (mu.square() * precision + logvar).sum(-1, keepdim=True) + mu.shape[1] * LOG_2PI
    right = (-0.5 * torch.cat([precision, -2 * mu * precision, constant], 1)).T
    left = torch.cat([z.square(), z, torch.ones_like(z[:, :1])], 1)
    return torch.logsumexp(left @ right, dim=1) - math.log(mu.shape[0])
