"""Property-based tests of the losses, each against an independent reference (torch.distributions,
Monte Carlo, or a model whose log p(x) is exact)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Normal, kl_divergence

from tests.linear_gaussian import linear_gaussian
from vaezoo.evaluate import bounds as evaluate_bounds
from vaezoo.model.distributions import DiagonalGaussian, gaussian_kl, gaussian_kl_per_dim
from vaezoo.parts.kl_weightings import Constant, FreeBits
from vaezoo.parts.likelihoods import Bernoulli as BernoulliLikelihood
from vaezoo.parts.likelihoods import Gaussian

DTYPES = st.sampled_from([torch.float32, torch.float64])
SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))  # B, C, H, W


def tensor(draw, shape, low, high, dtype):
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * (high - low) + low).to(dtype)


@st.composite
def posteriors(draw):
    batch, dims = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    dtype = draw(DTYPES)
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    mu = tensor(draw, (batch, dims), -scale, scale, dtype)
    logvar = tensor(draw, (batch, dims), -draw(st.sampled_from([1.0, 12.0])), draw(st.sampled_from([1.0, 8.0])), dtype)
    return mu, logvar


@settings(max_examples=200, deadline=None)
@given(posteriors())
def test_gaussian_kl_matches_torch_distributions_and_is_non_negative(posterior):
    mu, logvar = posterior
    reference = kl_divergence(
        Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ).sum(-1)
    ours = gaussian_kl(mu, logvar)
    tol = 1e-4 if mu.dtype == torch.float32 else 1e-10
    assert torch.allclose(ours, reference, rtol=tol, atol=tol)
    assert (gaussian_kl_per_dim(mu, logvar) >= 0).all()


@given(st.integers(1, 6), st.integers(1, 8), DTYPES)
def test_gaussian_kl_is_exactly_zero_at_the_prior(batch, dims, dtype):
    assert torch.equal(
        gaussian_kl(torch.zeros(batch, dims, dtype=dtype), torch.zeros(batch, dims, dtype=dtype)),
        torch.zeros(batch, dtype=dtype),
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_gaussian_kl_equals_a_monte_carlo_estimate_within_its_standard_error(seed):
    g = torch.Generator().manual_seed(seed)
    mu, logvar = (
        torch.randn(1, 3, generator=g, dtype=torch.float64),
        torch.randn(1, 3, generator=g, dtype=torch.float64),
    )
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    z = q.sample((20000,))
    samples = (q.log_prob(z) - p.log_prob(z)).sum(-1).squeeze(-1)
    se = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - gaussian_kl(mu, logvar)[0]) < 5 * se


@st.composite
def images_and_logits(draw):
    shape = draw(SHAPES)
    dtype = draw(DTYPES)
    magnitude = draw(st.sampled_from([1.0, 30.0, 1e4]))
    logits = tensor(draw, shape, -magnitude, magnitude, dtype)
    x = (tensor(draw, shape, 0, 1, dtype) > 0.5).to(dtype)
    return x, logits


@settings(max_examples=200, deadline=None)
@given(images_and_logits())
def test_bernoulli_log_prob_matches_torch_and_stays_finite(data):
    x, logits = data
    logits.requires_grad_(True)
    likelihood = BernoulliLikelihood(image_shape=tuple(x.shape[1:]))
    ours = likelihood.log_prob(x, logits)
    reference = Bernoulli(logits=logits.detach()).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours.detach(), reference, rtol=1e-5, atol=1e-3 if x.dtype == torch.float32 else 1e-8)
    ours.sum().backward()
    assert torch.isfinite(logits.grad).all()


@st.composite
def gaussian_cases(draw):
    shape = draw(SHAPES)
    dtype = draw(DTYPES)
    sigma = draw(st.sampled_from([1e-2, 0.1, 1.0, 50.0]))
    x = tensor(draw, shape, 0, 1, dtype)
    mean = tensor(draw, shape, -1, 2, dtype)
    return x, mean, sigma, draw(st.sampled_from(["fixed", "learned"])), draw(st.booleans())


@settings(max_examples=200, deadline=None)
@given(gaussian_cases())
def test_gaussian_log_prob_matches_torch_with_its_constants(case):
    x, mean, sigma, kind, per_pixel = case
    likelihood = Gaussian(
        image_shape=tuple(x.shape[1:]), sigma=kind, value=sigma, per_pixel=per_pixel, min_sigma=1e-3
    ).to(x.dtype)
    ours = likelihood.log_prob(x, mean)
    held = likelihood.log_sigma.exp().expand_as(mean)  # the sigma the module holds (float32-initialised)
    assert torch.allclose(held, torch.full_like(mean, sigma), rtol=1e-6)
    reference = Normal(mean, held).log_prob(x).sum(dim=(1, 2, 3))
    tol = 1e-3 if x.dtype == torch.float32 else 1e-9
    assert torch.allclose(ours.detach(), reference, rtol=tol, atol=tol)


def test_reparameterization_has_the_stated_moments_and_passes_gradients():
    n = 200_000
    mu = torch.tensor([0.5, -2.0, 3.0], requires_grad=True)
    logvar = torch.tensor([0.0, -3.0, 1.5], requires_grad=True)
    z = DiagonalGaussian(mu.expand(n, 3), logvar.expand(n, 3)).rsample(generator=torch.Generator().manual_seed(0))
    var = torch.exp(logvar.detach())
    # mean: standard error sigma/sqrt(n); variance: sqrt(2/(n-1)) * sigma^2 (Gaussian); allow 5 of each
    assert ((z.detach().mean(0) - mu.detach()).abs() < 5 * var.sqrt() / math.sqrt(n)).all()
    assert ((z.detach().var(0) - var).abs() < 5 * var * math.sqrt(2 / (n - 1))).all()
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.full((3,), float(n)))
    assert logvar.grad.abs().min() > 0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(0, 5), st.integers(0, 2**31 - 1))
def test_per_image_loss_does_not_depend_on_the_rest_of_the_batch(batch, position, seed):
    from vaezoo.spec.build import build_model
    from vaezoo.spec.experiment import validate

    torch.manual_seed(0)
    model = build_model(
        validate(
            {"name": "x", "model": {"latent_dim": 3, "encoder": {"hidden": [16]}, "decoder": {"hidden": [16]}}}, "t"
        ).model,
        (1, 28, 28),
    )
    g = torch.Generator().manual_seed(seed)
    others = torch.bernoulli(torch.full((batch, 1, 28, 28), 0.3), generator=g)
    x = torch.bernoulli(torch.full((1, 1, 28, 28), 0.3), generator=g)
    position = min(position, batch)
    together = torch.cat([others[:position], x, others[position:]])

    def per_image(images):  # the deterministic path z = mu, so that only batch composition differs
        mu, logvar = model.encode(images)
        return -model.likelihood.log_prob(images, model.decode(mu)) + gaussian_kl(mu, logvar)

    assert torch.allclose(per_image(together)[position], per_image(x)[0], rtol=1e-5, atol=1e-4)


def test_elbo_below_iwae_bounds_below_exact_log_likelihood():
    model, x, exact = linear_gaussian(shift=0.6, inflate=3.0)
    per_image = {
        k: evaluate_bounds.log_likelihood_iw(model, x, k, torch.Generator().manual_seed(k)) for k in (1, 10, 100)
    }
    bounds = {k: v.mean().item() for k, v in per_image.items()}
    elbo = -evaluate_bounds.elbo_means(model, x, batch_size=100).neg_elbo
    standard_error = per_image[1].std().item() / math.sqrt(len(x))
    assert abs(elbo - bounds[1]) < 4 * math.sqrt(2) * standard_error  # both estimate E[log w]: L_1 is the ELBO
    assert bounds[1] < bounds[10] < bounds[100]
    # L_100 <= log p(x) holds in expectation; per image the estimate is noisy, so allow 3 paired standard errors
    gap = per_image[100] - exact
    assert gap.mean().item() < 3 * gap.std().item() / math.sqrt(len(x))
    assert bounds[1] < exact.mean().item() and bounds[10] < exact.mean().item()


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 64))
def test_iwae_objective_is_exact_with_the_exact_posterior(samples):
    from vaezoo.parts.objectives import IWAE

    model, x, exact = linear_gaussian()
    torch.manual_seed(samples)
    assert torch.allclose(IWAE(samples=samples).terms(model, x, 1.0, Constant(beta=1.0)).loss, -exact, atol=1e-9)


def test_iwae_objective_sits_between_the_elbo_and_the_exact_nll():
    from vaezoo.parts.objectives import ELBO, IWAE

    model, x, exact = linear_gaussian(shift=0.6, inflate=3.0)
    torch.manual_seed(0)
    iwae = IWAE(samples=50).terms(model, x, 1.0, Constant(beta=1.0)).loss
    elbo = ELBO().terms(model, x, 1.0, Constant(beta=1.0)).loss
    se = (iwae + exact).std().item() / math.sqrt(len(x))
    assert -exact.mean().item() - 3 * se < iwae.mean().item() < elbo.mean().item()


@settings(max_examples=100, deadline=None)
@given(posteriors(), st.floats(0.0, 3.0), st.floats(0.0, 10.0))
def test_free_bits_floors_each_dimension_of_the_batch_mean_kl(posterior, nats, beta):
    mu, logvar = posterior
    kl_per_dim = gaussian_kl_per_dim(mu, logvar).double().requires_grad_(True)
    penalty = FreeBits(beta=beta, nats=nats).penalty(kl_per_dim.sum(-1), kl_per_dim, beta)
    mean_kl = kl_per_dim.detach().mean(0)
    expected = beta * torch.maximum(mean_kl, torch.tensor(nats, dtype=torch.float64)).sum()
    assert penalty.shape == (mu.shape[0],) and torch.allclose(penalty, expected.expand_as(penalty))
    assert (penalty >= beta * nats * mu.shape[1] - 1e-9).all()
    penalty.mean().backward()
    below = mean_kl < nats  # dimensions under the floor get no gradient: nothing to gain there
    assert (kl_per_dim.grad[:, below] == 0).all()
    if nats == 0:
        assert torch.allclose(penalty.mean(), beta * kl_per_dim.detach().sum(-1).mean())
