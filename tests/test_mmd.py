"""InfoVAE's MMD (Zhao et al. 2017) against a direct double sum, near zero between samples of one
distribution, and the ELBO itself when its weights say so."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linear_gaussian import linear_gaussian
from vaezoo.parts.kl_weightings import Constant
from vaezoo.parts.objectives import ELBO
from vaezoo.parts.objectives.mmd import InfoVAE, mmd_squared


def direct_kernel(a: torch.Tensor, b: torch.Tensor, kernel: str, scale: float) -> float:
    c = 2 * len(a) * scale**2
    d = sum((ai - bi) ** 2 for ai, bi in zip(a.tolist(), b.tolist()))
    return math.exp(-d / c) if kernel == "rbf" else c / (c + d)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(1, 4), st.sampled_from(["rbf", "imq"]), st.integers(0, 10**6))
def test_mmd_is_the_unbiased_double_sum(n, m, dims, kernel, seed):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dims, generator=generator, dtype=torch.float64)
    w = torch.randn(m, dims, generator=generator, dtype=torch.float64) + 0.5
    k = lambda a, b: direct_kernel(a, b, kernel, 0.7)
    within_q = sum(k(z[i], z[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    within_p = sum(k(w[i], w[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    across = sum(k(z[i], w[j]) for i in range(n) for j in range(m)) / (n * m)
    assert mmd_squared(z, w, kernel, 0.7).item() == pytest.approx(within_q + within_p - 2 * across, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_tells_a_shifted_distribution_from_the_same_one(kernel):
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 2000, 4, generator=generator, dtype=torch.float64)
    same = mmd_squared(a, b, kernel, 1.0).item()
    shifted = mmd_squared(a, b + 0.5, kernel, 1.0).item()
    assert abs(same) < 2e-3 < shifted / 5


def test_a_single_image_batch_adds_no_mmd():
    assert mmd_squared(torch.randn(1, 3), torch.randn(5, 3), "imq", 1.0).item() == 0.0


def test_no_mmd_weight_and_the_whole_kl_is_the_elbo():
    torch.manual_seed(7)
    model, x, _ = linear_gaussian(shift=0.6, inflate=3.0)
    torch.manual_seed(0)
    info = InfoVAE(alpha=0.0, lam=1.0, kernel="imq", scale=1.0).terms(model, x, 1.0, Constant(beta=1.0))
    torch.manual_seed(0)
    elbo = ELBO().terms(model, x, 1.0, Constant(beta=1.0))
    torch.testing.assert_close(info.loss, elbo.loss)


def test_wae_reconstructs_from_the_mean_and_adds_lambda_times_the_mmd():
    from vaezoo.parts.objectives.wae import WAE

    torch.manual_seed(7)
    model, x, _ = linear_gaussian(shift=0.6, inflate=3.0)
    torch.manual_seed(0)
    terms = WAE(lam=10.0, kernel="imq", scale=1.0).terms(model, x, 1.0, Constant(beta=1.0))
    mu = model.posterior.distribution(model.encoder(x)).mu
    recon = -model.likelihood.log_prob(x, model.decode_latent(mu))
    torch.testing.assert_close(terms.recon_nll, recon)
    torch.manual_seed(0)
    model.posterior.rsample(model.encoder(x))  # the same draws: the posterior's, then the prior's
    mmd = mmd_squared(mu, model.prior.sample(len(x)).to(mu.dtype), "imq", 1.0)
    torch.testing.assert_close(terms.loss, recon + 10.0 * mmd)
