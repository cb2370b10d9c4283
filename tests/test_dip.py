"""DIP-VAE's covariances and penalty (Kumar et al. 2018) against direct computations."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaezoo.core.errors import SpecError
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.parts.objectives.dip import dip_covariance, dip_penalty
from vaezoo.spec.experiment import validate


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(0, 10**6))
def test_the_covariances_are_the_batchs_and_q_zs(batch, dims, seed):
    generator = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(2, batch, dims, generator=generator, dtype=torch.float64)
    q = DiagonalGaussian(mu, logvar)
    means = torch.cov(mu.T, correction=0).reshape(dims, dims)
    torch.testing.assert_close(dip_covariance(q, "i"), means)
    # q(z) = (1/B) sum_b N(mu_b, diag var_b): its covariance by the law of total variance
    torch.testing.assert_close(dip_covariance(q, "ii"), means + torch.diag(logvar.exp().mean(0)))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.floats(0.0, 50.0), st.floats(0.0, 50.0), st.integers(0, 10**6))
def test_the_penalty_is_the_papers_sum_and_vanishes_at_the_identity(dims, off, diag, seed):
    c = torch.randn(dims, dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    direct = sum(
        (off * c[i, j] ** 2 if i != j else diag * (c[i, i] - 1) ** 2) for i in range(dims) for j in range(dims)
    )
    assert dip_penalty(c, off, diag).item() == pytest.approx(float(direct), rel=1e-9, abs=1e-12)
    assert dip_penalty(torch.eye(dims, dtype=torch.float64), off, diag).item() == 0.0


def test_the_spec_refuses_a_flow_posterior():
    with pytest.raises(SpecError, match="dip: needs a diagonal Gaussian posterior"):
        validate({"name": "t", "model": {"posterior": {"kind": "planar"}}, "objective": {"kind": "dip"}}, "t")
