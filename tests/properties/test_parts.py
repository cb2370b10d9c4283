"""The model's parts against independent references: the mixture prior against torch.distributions
and its Monte Carlo KL against a high-sample estimate; the discretized logistic as a probability
mass over the 256 grey levels, against a direct float64 computation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_components import SMALL, posterior_for
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.parts.discretized_logistic import DiscretizedLogistic
from vaezoo.parts.posteriors import PosteriorSample
from vaezoo.parts.priors import PRIORS, GaussianMixture
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

seeds = st.integers(0, 2**31 - 1)


def mixture(seed: int, components: int = 4, dims: int = 3) -> GaussianMixture:
    torch.manual_seed(seed)
    prior = GaussianMixture(latent_dim=dims, components=components, spread=1.5).double()
    with torch.no_grad():
        prior.logits.normal_()
        prior.logvars.uniform_(-1.0, 0.5)
    return prior


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 6), st.integers(1, 5))
def test_mixture_log_prob_matches_torch_distributions(seed, components, dims):
    prior = mixture(seed, components, dims)
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits),
        torch.distributions.Independent(torch.distributions.Normal(prior.means, (0.5 * prior.logvars).exp()), 1),
    )
    z = torch.randn(7, 2, dims, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(prior.log_prob(z), reference.log_prob(z))
    marginal = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits.expand(dims, components)),
        torch.distributions.Normal(prior.means.T, (0.5 * prior.logvars.T).exp()),
    )
    torch.testing.assert_close(prior.marginal_log_prob(z), marginal.log_prob(z))


@pytest.mark.parametrize("name", PRIORS.names())
def test_every_prior_samples_what_its_log_prob_and_moments_describe(name):
    model = {
        "latent_dim": 3,
        "prior": {"kind": name, **SMALL.get(name, {})},
        "posterior": {"kind": posterior_for(name)},
    }
    spec = validate({"name": "t", "model": model}, "t")
    torch.manual_seed(0)
    latent = build_model(spec.model, (1, 28, 28)).latent
    prior = latent.density()  # a VampPrior's, given the posterior at its pseudo-inputs
    full = prior.sample(200_000, torch.Generator().manual_seed(1))
    assert full.shape == (200_000, latent.layout.dim)
    z = latent.code(full)  # the moments describe the code (a hierarchy's top layer)
    mean, std = prior.marginal_moments()
    assert z.shape == (200_000, 3)
    torch.testing.assert_close(z.mean(0), mean, atol=5 * std.max().item() / math.sqrt(len(z)), rtol=0)
    torch.testing.assert_close(z.std(0), std, atol=0.02, rtol=0.02)
    assert torch.isfinite(prior.log_prob(full)).all()


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_monte_carlo_kl_of_the_mixture_prior_is_unbiased(seed):
    """The ELBO's one-sample KL, averaged, agrees with a 400k-sample estimate within its standard error."""
    prior = mixture(seed)
    g = torch.Generator().manual_seed(seed)
    q = DiagonalGaussian(
        torch.randn(1, 3, generator=g, dtype=torch.float64), torch.randn(1, 3, generator=g, dtype=torch.float64) - 1
    )

    def one_sample_kls(n: int) -> torch.Tensor:
        z = q.rsample(n, g)
        draw = PosteriorSample(z=z, log_q=q.log_prob(z), base=q)
        return (draw.log_q - prior.log_prob(draw.z)).squeeze(-1)

    estimates, precise = one_sample_kls(20_000), one_sample_kls(400_000).mean()
    standard_error = estimates.std() / math.sqrt(len(estimates))
    assert abs(estimates.mean() - precise) < 5 * standard_error


def direct_probabilities(params: torch.Tensor, mixtures: int) -> torch.Tensor:
    """P(v) for v = 0..255 per pixel of a 1-channel image from the logistic CDF, float64, tails by +-inf
    edges: (256, 1, H, W)."""
    logits, means, log_scales = params.double().unflatten(0, (3, mixtures)).unbind(0)
    weights = torch.softmax(logits, dim=0)
    scale = log_scales.clamp(min=-7.0).exp()
    centers = torch.arange(256, dtype=torch.float64) * 2 / 255 - 1
    upper = torch.where(centers < 1, centers + 1 / 255, torch.tensor(math.inf, dtype=torch.float64))
    lower = torch.where(centers > -1, centers - 1 / 255, torch.tensor(-math.inf, dtype=torch.float64))
    shape = (256, 1, 1, 1)
    cdf = lambda edge: torch.sigmoid((edge.view(shape) - means) / scale)
    return (weights * (cdf(upper) - cdf(lower))).sum(1).unsqueeze(1)  # the channel axis


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(1, 5), st.floats(-5.0, 1.0))
def test_discretized_logistic_is_a_probability_mass_equal_to_a_direct_computation(seed, mixtures, scale_shift):
    likelihood = DiscretizedLogistic(image_shape=(1, 2, 3), mixtures=mixtures)
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(3 * mixtures, 2, 3, generator=g, dtype=torch.float64)
    params[2 * mixtures :] += scale_shift  # from sharp (log-scale -4) to broad (+2)
    values = torch.arange(256, dtype=torch.float64).view(256, 1, 1, 1) / 255
    log_p = likelihood.pixel_log_prob(values.expand(256, 1, 2, 3), params)  # (256, 1, 2, 3)
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(1, 2, 3, dtype=torch.float64), atol=1e-5, rtol=0)
    direct = direct_probabilities(params, mixtures)
    torch.testing.assert_close(log_p.exp(), direct, atol=1e-9, rtol=1e-6)
    mean = likelihood.mean(params)
    torch.testing.assert_close(mean, (direct * values).sum(0), atol=1e-6, rtol=0)


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_the_standard_prior_elbo_equals_an_independent_computation(seed):
    """N(0, I) with a Gaussian posterior: the ELBO is today's closed form, term by term, with the same noise."""
    torch.manual_seed(seed)
    model = build_model(
        validate({"name": "t", "model": {"latent_dim": 4, "encoder": {"hidden": [8]}}}, "t").model, (1, 28, 28)
    )
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(seed))
    terms = model.elbo(x, generator=torch.Generator().manual_seed(seed))
    mu, logvar = model.posterior.head(model.encoder(x)).chunk(2, dim=-1)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
    z = mu + (0.5 * logvar).exp() * eps
    recon = torch.nn.functional.binary_cross_entropy_with_logits(model.decoder(z), x, reduction="none").sum((1, 2, 3))
    q, p = torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    kl = torch.distributions.kl_divergence(q, p)
    torch.testing.assert_close(terms.recon_nll, recon)
    torch.testing.assert_close(terms.kl_per_dim, kl)
    torch.testing.assert_close(terms.neg_elbo, recon + kl.sum(-1))
