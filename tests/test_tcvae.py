"""beta-TCVAE (Chen et al. 2018): its three parts sum to the one-sample KL, its weights are the
paper's, a collapsed posterior has neither mutual information nor total correlation, and with every
weight at 1 it is the ELBO."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_components import SMALL
from vaezoo.core.errors import SpecError
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.parts.kl_weightings import Constant
from vaezoo.parts.objectives import ELBO
from vaezoo.parts.objectives.tcvae import BetaTCVAE, decompose, log_importance_weights
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(100, 10**6))
def test_stratified_rows_are_distributions_and_minibatch_rows_weigh_one_over_n(batch, n):
    torch.testing.assert_close(
        log_importance_weights(batch, n, "mss").exp().sum(1), torch.ones(batch, dtype=torch.float64)
    )
    torch.testing.assert_close(
        log_importance_weights(batch, n, "mws").exp().sum(1), torch.full((batch,), 1 / n, dtype=torch.float64)
    )


def batch(seed: int, collapsed: bool = False):
    generator = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(2, 7, 3, generator=generator, dtype=torch.float64)
    if collapsed:
        mu, logvar = mu[:1].expand(7, 3), logvar[:1].expand(7, 3)
    q = DiagonalGaussian(mu, logvar)
    z = q.rsample(generator=generator)
    return q, z, q.log_prob(z), -0.5 * (z.square() + torch.log(torch.tensor(2 * torch.pi))).sum(-1)


@pytest.mark.parametrize("sampling", ["mss", "mws"])
@pytest.mark.parametrize("seed", range(5))
def test_the_parts_sum_to_the_one_sample_kl(sampling, seed):
    q, z, log_q, log_p = batch(seed)
    parts = decompose(q, z, log_q, log_p, log_importance_weights(7, 1000, sampling))
    total = parts.mutual_information + parts.total_correlation + parts.dimension_wise
    torch.testing.assert_close(total, log_q - log_p)


def test_a_collapsed_factorized_posterior_has_no_mutual_information_and_no_total_correlation():
    q, z, log_q, log_p = batch(0, collapsed=True)
    parts = decompose(q, z, log_q, log_p, log_importance_weights(7, 1000, "mss"))
    torch.testing.assert_close(parts.mutual_information, torch.zeros(7, dtype=torch.float64))
    torch.testing.assert_close(parts.total_correlation, torch.zeros(7, dtype=torch.float64))


def small_model(kl_estimator: str):
    spec = validate(
        {"name": "t", "model": {"latent_dim": 3, "encoder": {"hidden": [16]}, "decoder": {"hidden": [16]},
                                "kl_estimator": kl_estimator}},
        "test",
    )  # fmt: skip
    torch.manual_seed(0)
    return build_model(spec.model, (1, 28, 28))


def test_every_weight_at_one_is_the_elbo_with_a_one_sample_kl():
    model = small_model("monte-carlo")
    x = torch.bernoulli(torch.full((6, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    tcvae = BetaTCVAE(tc=1.0, alpha=1.0, gamma=1.0, sampling="mss", dataset_size=500).terms(
        model, x, 0.7, Constant(beta=0.7)
    )
    torch.manual_seed(2)
    elbo = ELBO().terms(model, x, 0.7, Constant(beta=0.7))
    torch.testing.assert_close(tcvae.loss, elbo.loss)


@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_the_spec_refuses_a_posterior_without_a_gaussian_density(posterior):
    with pytest.raises(SpecError, match="tcvae: needs a diagonal Gaussian posterior"):
        validate(
            {
                "name": "t",
                "model": {"posterior": {"kind": posterior, **SMALL[posterior]}},
                "objective": {"kind": "tcvae"},
            },
            "t",
        )
