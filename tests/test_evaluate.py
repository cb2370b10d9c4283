"""The importance-weighted estimator against a VAE whose log p(x) is known exactly, and the latent metrics."""

import math

import pytest
import torch
from torch import nn

from vaezoo import evaluate
from vaezoo.likelihoods import Gaussian
from vaezoo.model import VAE

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
        return mu, self.logvar.expand_as(mu)


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
    model = VAE(AffineEncoder(a, b, 1 / m_diag, shift, inflate), LinearDecoder(w, b), likelihood, LATENT)
    marginal = torch.distributions.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(6, dtype=torch.float64))
    x = marginal.sample((400,)).unflatten(-1, SHAPE)
    return model, x, marginal.log_prob(x.flatten(1))


@pytest.mark.parametrize("samples", [1, 10, 100])
def test_exact_posterior_gives_exact_log_likelihood_for_any_k(samples):
    model, x, exact = linear_gaussian()
    estimate = evaluate.log_likelihood_iw(model, x, samples, torch.Generator().manual_seed(1))
    assert torch.allclose(estimate, exact, atol=1e-9)


def test_chunked_samples_still_exact(monkeypatch):
    model, x, exact = linear_gaussian()
    monkeypatch.setitem(evaluate.CHUNK_ELEMENTS, "cpu", 7 * 64 * 6)  # batches of 64 images, 7 samples a chunk
    estimate = evaluate.log_likelihood_iw(model, x, 50, torch.Generator().manual_seed(1))
    assert torch.allclose(estimate, exact, atol=1e-9)
    result = evaluate.importance_weighted_nll(model, x, 50, batch_size=64)
    assert result.nll == pytest.approx(-exact.mean().item(), abs=1e-9)
    assert result.stderr == pytest.approx(exact.std().item() / math.sqrt(len(exact)), rel=1e-6)


def test_poorer_posterior_bound_rises_with_k_toward_log_px_and_elbo_stays_below():
    model, x, exact = linear_gaussian(shift=0.6, inflate=3.0)
    bounds = [evaluate.log_likelihood_iw(model, x, k, torch.Generator().manual_seed(2)).mean() for k in (1, 10, 100, 1000)]
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] < exact.mean()
    assert exact.mean() - bounds[3] < 0.25 * (exact.mean() - bounds[0])  # most of the gap is closed
    elbo = evaluate.elbo_means(model, x, batch_size=100)
    assert -elbo.neg_elbo < exact.mean().item()
    assert -elbo.neg_elbo == pytest.approx(bounds[0].item(), abs=0.15)  # L_1 is the ELBO


def test_active_units_and_kl_per_dim():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1000, 4, generator=g) * torch.tensor([1.0, 0.5, 0.05, 0.0])
    logvar = torch.zeros(1000, 4)
    stats = evaluate.latent_stats(mu, logvar, batch_size=256)
    assert stats.active == [True, True, False, False]
    expected = 0.5 * mu.square().mean(0)
    assert stats.kl_per_dim == pytest.approx(expected.tolist(), rel=1e-5)


def test_mutual_information_is_zero_for_a_collapsed_posterior_and_log_n_for_a_sharp_one():
    n = 2000
    collapsed = evaluate.mutual_information(torch.zeros(n, 3), torch.zeros(n, 3), batch_size=512)
    assert abs(collapsed) < 0.05
    mu = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 2) * 10
    sharp = evaluate.mutual_information(mu, torch.full((n, 2), -4.0), batch_size=512)
    assert sharp == pytest.approx(math.log(n), abs=1e-3)


def test_probe_separates_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2000) % 10
    centres = torch.randn(10, 5, generator=g) * 5
    features = centres[labels] + 0.1 * torch.randn(2000, 5, generator=g)
    assert evaluate.probe_accuracy(features[:1500], labels[:1500], features[1500:], labels[1500:], 10) == 1.0
    noise = torch.randn(2000, 5, generator=g)
    assert evaluate.probe_accuracy(noise[:1500], labels[:1500], noise[1500:], labels[1500:], 10) < 0.25
