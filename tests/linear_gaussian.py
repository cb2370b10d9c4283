"""A linear Gaussian VAE whose log p(x) is known exactly, for checking likelihood estimators."""

import torch
from torch import nn

from vaezoo.model.latent import LatentLayout
from vaezoo.model.vae import VAE
from vaezoo.parts.likelihoods import Gaussian
from vaezoo.parts.posteriors import GaussianPosterior
from vaezoo.parts.priors import StandardNormal

SHAPE = (1, 2, 3)  # 6 "pixels"
LATENT = 2


class LinearDecoder(nn.Module):
    def __init__(self, w: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, z):
        return (z @ self.w.T + self.b).unflatten(-1, SHAPE)


class AffineEncoder(nn.Module):
    """q(z|x) = N(A (x - b) + shift, diag(var * inflate))."""

    def __init__(self, a, b, var, shift=0.0, inflate=1.0) -> None:
        super().__init__()
        self.a, self.b, self.logvar, self.shift = a, b, torch.log(var * inflate), shift

    def forward(self, x):
        mu = (x.flatten(1) - self.b) @ self.a.T + self.shift
        return torch.cat([mu, self.logvar.expand_as(mu)], dim=-1)  # the posterior's head is the identity


def linear_gaussian(shift=0.0, inflate=1.0, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I) with orthogonal columns in W, so the exact posterior
    N(M^-1 W^T (x - b) / s^2, M^-1), M = I + W^T W / s^2, is diagonal and an encoder can output it."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, LATENT, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    m_diag = 1 + (w * w).sum(0) / sigma**2
    a = (w / sigma**2 / m_diag).T
    likelihood = Gaussian(image_shape=SHAPE, sigma="fixed", value=sigma, per_pixel=False, min_sigma=1e-3).double()
    posterior = GaussianPosterior(in_features=2 * LATENT, latent_dim=LATENT)
    posterior.head = nn.Identity()
    encoder = AffineEncoder(a, b, 1 / m_diag, shift, inflate)
    prior, layout = StandardNormal(latent_dim=LATENT), LatentLayout((LATENT,))
    model = VAE(encoder, posterior, prior, LinearDecoder(w, b), likelihood, layout)
    marginal = torch.distributions.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(6, dtype=torch.float64))
    x = marginal.sample((400,)).unflatten(-1, SHAPE)
    return model, x, marginal.log_prob(x.flatten(1))
