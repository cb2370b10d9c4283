"""The ELBO's KL estimators, for every prior and posterior: the closed forms (whole or per layer) are
the expectation of the one-sample estimate, and match torch.distributions layer by layer."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.test_components import SMALL, fits
from vaezoo.core.errors import SpecError
from vaezoo.model.kl_estimate import KLEstimate
from vaezoo.parts import POSTERIORS, PRIORS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)


def model_for(prior: str, posterior: str, estimator: str = "analytic"):
    spec = validate(
        {
            "name": "t",
            "model": {
                "latent_dim": 3,
                "encoder": {"hidden": [16]},
                "decoder": {"hidden": [16]},
                "prior": {"kind": prior, **SMALL.get(prior, {})},
                "posterior": {"kind": posterior, **SMALL.get(posterior, {})},
                "kl_estimator": estimator,
            },
        },
        "test",
    )
    torch.manual_seed(0)
    return build_model(spec.model, IMAGE)


def pairs() -> list[tuple[str, str]]:
    return [
        (prior, posterior) for prior in PRIORS.names() for posterior in POSTERIORS.names() if fits(prior, posterior)
    ]


@pytest.mark.parametrize(("prior", "posterior"), pairs())
def test_monte_carlo_for_every_model_when_asked(prior, posterior):
    assert model_for(prior, posterior, "monte-carlo").kl_estimate is KLEstimate.MONTE_CARLO


@pytest.mark.parametrize(("prior", "posterior"), pairs())
def test_the_analytic_estimate_is_the_expectation_of_the_one_sample_estimate(prior, posterior):
    """E_q[log q(z|x) - log p(z)] = the closed form, where there is one: checked by averaging many
    one-sample estimates (the same draws) against the analytic KL at them."""
    model = model_for(prior, posterior)
    x = torch.bernoulli(torch.full((4, *IMAGE), 0.3), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        draw = model.latent.draw(model.encoder(x), 20000, torch.Generator().manual_seed(2))
        kl, per_dim = model.latent.kl_terms(draw)
        one_sample = draw.log_q - model.latent.density().log_prob(draw.z)
    if model.kl_estimate is KLEstimate.MONTE_CARLO:
        assert per_dim is None
        torch.testing.assert_close(kl, one_sample)
        return
    assert (
        per_dim.shape[-1] == model.latent.layout.variables == draw.z.shape[-1] // (model.latent.layout.categories or 1)
    )
    torch.testing.assert_close(per_dim.sum(-1), kl)
    # a flat closed form is per image (B,); a hierarchy's is per draw (samples, B), at the upper layers' draw
    mc, analytic = one_sample.double().mean(0), kl.double() if kl.dim() == 1 else kl.double().mean(0)
    stderr = one_sample.double().std(0) / 20000**0.5
    assert ((mc - analytic).abs() < 5 * stderr + 1e-3).all(), (mc, analytic, stderr)


def test_the_ladders_layer_kl_is_torch_distributions_kl_layer_by_layer():
    model = model_for("ladder", "ladder")
    x = torch.bernoulli(torch.full((3, *IMAGE), 0.3), generator=torch.Generator().manual_seed(3))
    features = model.encoder(x)
    draw = model.latent.draw(features, generator=torch.Generator().manual_seed(4))
    hidden = model.posterior.bottom_up(features)
    _, top = model.prior.split(draw.z)
    top_q = model.posterior.estimate(1, hidden[1])
    expected_top = kl_divergence(Normal(top_q.mu, top_q.logvar.mul(0.5).exp()), Normal(0.0, 1.0))
    conditional = model.prior.conditional(0, top)
    q = model.posterior.combine(model.posterior.estimate(0, hidden[0], top), conditional)
    expected_lower = kl_divergence(
        Normal(q.mu, q.logvar.mul(0.5).exp()), Normal(conditional.mu, conditional.logvar.mul(0.5).exp())
    )
    torch.testing.assert_close(draw.layer_kl, torch.cat([expected_lower, expected_top], -1))


def test_free_bits_trains_a_ladder_through_its_per_layer_kl_but_not_a_monte_carlo_one():
    base = {
        "name": "t",
        "model": {"prior": {"kind": "ladder"}, "posterior": {"kind": "ladder"}},
        "kl": {"kind": "free_bits", "nats": 0.25},
    }
    validate(base, "test")
    with pytest.raises(SpecError, match="kl_estimator monte-carlo"):
        validate({**base, "model": {**base["model"], "kl_estimator": "monte-carlo"}}, "test")
