"""The densities every part shares: the Gaussian log-density, its constant, the closed-form KL
against N(0, I), the diagonal Gaussian that a posterior hands to the rest of the model, and its
counterpart for a latent of categorical variables (`CategoricalCode`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CategoricalCode:
    """q(c|x) over N categorical variables of K categories each: `logits`, (B, N, K).

    The code it describes is c as one-hot blocks laid side by side, (B, N * K). Like `DiagonalGaussian`,
    it unpacks as (mu, logvar): the code's exact mean and log-variance per coordinate, a one-hot
    coordinate being Bernoulli(q_nk), so mean q_nk and variance q_nk (1 - q_nk).
    """

    logits: torch.Tensor

    @property
    def log_probs(self) -> torch.Tensor:
        """log q(c_n = k | x), normalized over each variable's categories, (B, N, K)."""
        return torch.log_softmax(self.logits, dim=-1)

    @property
    def mu(self) -> torch.Tensor:
        """E_q[one-hot c], (B, N * K): each variable's category probabilities."""
        return torch.softmax(self.logits, dim=-1).flatten(-2)

    @property
    def logvar(self) -> torch.Tensor:
        """log Var_q of each one-hot coordinate, log q (1 - q), (B, N * K)."""
        log_p = self.log_probs
        return (log_p + torch.log1p(-log_p.exp().clamp_max(1 - torch.finfo(log_p.dtype).eps))).flatten(-2)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.mu, self.logvar))


def categorical_kl(q_log_probs: torch.Tensor, p_log_probs: torch.Tensor) -> torch.Tensor:
    """KL(q || p) of categorical variables from their log-probabilities, (..., N, K) -> (..., N), in nats.
    A category q gives no mass contributes 0 (0 log 0 = 0), whatever p gives it."""
    q = q_log_probs.exp()
    return torch.where(q > 0, q * (q_log_probs - p_log_probs), torch.zeros_like(q)).sum(-1)


def one_hot_log_mass(code: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """log P(c) of one-hot codes under independent categoricals: `code` (..., N * K) one-hot blocks (a
    relaxed code is read at its argmax, the category a Gumbel-max draw with the same noise picks),
    `log_probs` (..., N, K) broadcasting against it; summed over the N variables."""
    blocks = code.unflatten(-1, log_probs.shape[-2:])
    index = blocks.argmax(-1, keepdim=True)
    return torch.gather(log_probs.expand(*blocks.shape), -1, index).squeeze(-1).sum(-1)
