"""Family contracts, parametrized over the registries, so that a new KL weighting, likelihood or
objective is checked by what is already here: weights stay in bounds, likelihoods are normalized
(a mass sums to 1 over every image, a density integrates to 1), objectives are bounds on -log p(x)
that are tight at the exact posterior."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linear_gaussian import linear_gaussian
from vaezoo.core.schema import build
from vaezoo.parts import LIKELIHOODS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS, Weighted
from vaezoo.parts.objectives import OBJECTIVES


def default(registry, name, **context):
    if getattr(registry.get(name), "needs_dataset_size", False):
        context["dataset_size"] = 60000
    return build(registry, registry.get(name).Spec(kind=name), **context)


@pytest.mark.parametrize("name", KL_WEIGHTINGS.names())
@settings(max_examples=50, deadline=None)
@given(total=st.integers(1, 100_000), data=st.data())
def test_every_kl_weighting_stays_within_its_beta_and_penalizes_by_it(name, total, data):
    weighting = default(KL_WEIGHTINGS, name)
    step = data.draw(st.integers(0, total - 1))
    beta = weighting.beta(step, total)
    assert 0.0 <= beta <= weighting.max_beta
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    kl_per_dim = torch.rand(4, 3, generator=generator) * 2
    kl = kl_per_dim.sum(-1)
    penalty = weighting.penalty(kl, kl_per_dim, beta)
    assert penalty.shape == (4,) and (penalty >= 0).all()
    assert (weighting.penalty(kl, kl_per_dim, 0.0) == 0).all()
    assert (weighting.penalty(kl, kl_per_dim, 2 * beta + 1) >= penalty).all()  # non-decreasing in beta
    if isinstance(weighting, Weighted):
        torch.testing.assert_close(penalty, beta * kl)


@pytest.mark.parametrize("name", KL_WEIGHTINGS.names())
def test_every_kl_weighting_reaches_its_beta(name):
    weighting = default(KL_WEIGHTINGS, name)
    total = 100_000
    assert max(weighting.beta(step, total) for step in range(0, total, 97)) == pytest.approx(
        weighting.max_beta, rel=1e-3
    )


def support(likelihood) -> torch.Tensor:
    """Every image of 1 x 1 x 2 pixels the likelihood's data can hold: binary, or 8-bit grey levels."""
    levels = torch.arange(256.0) / 255 if likelihood.needs_binarize == "none" else torch.tensor([0.0, 1.0])
    return torch.cartesian_prod(levels, levels).reshape(-1, 1, 1, 2)


@pytest.mark.parametrize("name", LIKELIHOODS.names())
def test_every_likelihood_is_normalized(name):
    likelihood = default(LIKELIHOODS, name, image_shape=(1, 1, 2)).double()
    generator = torch.Generator().manual_seed(0)
    params = torch.randn(likelihood.params_per_pixel, 1, 2, generator=generator, dtype=torch.float64)
    if likelihood.discrete:
        x = support(likelihood).double()
        total = torch.logsumexp(likelihood.log_prob(x, params.expand(len(x), *params.shape)), dim=0).exp().item()
    else:  # a density over [-L, L]^2 by the trapezoid rule, its mass well inside (sigma 0.1 by default)
        grid = torch.linspace(-3.0, 3.0, 1201, dtype=torch.float64)
        x = torch.cartesian_prod(grid, grid).reshape(-1, 1, 1, 2)
        density = likelihood.log_prob(x, params.expand(len(x), *params.shape)).exp().reshape(len(grid), len(grid))
        total = torch.trapezoid(torch.trapezoid(density, grid), grid).item()
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", LIKELIHOODS.names())
def test_every_likelihood_broadcasts_over_importance_samples_and_means_lie_in_the_pixel_range(name):
    likelihood = default(LIKELIHOODS, name, image_shape=(1, 2, 2))
    generator = torch.Generator().manual_seed(1)
    params = torch.randn(3, 5, likelihood.params_per_pixel, 2, 2, generator=generator)
    x = torch.randint(0, 2, (5, 1, 2, 2), generator=generator).float()
    together = likelihood.log_prob(x, params)
    assert together.shape == (3, 5)
    for sample, image in itertools.product(range(3), range(5)):
        alone = likelihood.log_prob(x[image : image + 1], params[sample, image : image + 1])
        torch.testing.assert_close(together[sample, image : image + 1], alone)
    mean = likelihood.mean(params)
    assert mean.shape == (3, 5, 1, 2, 2) and ((0 <= mean) & (mean <= 1)).all()


BOUNDS = [name for name, objective in OBJECTIVES.items() if objective.is_bound]


@pytest.mark.parametrize("name", BOUNDS)
def test_every_bound_at_beta_one_is_tight_at_the_exact_posterior(name):
    objective = default(OBJECTIVES, name)
    model, x, exact = linear_gaussian()
    torch.manual_seed(0)
    loss = objective.terms(model, x, 1.0, default(KL_WEIGHTINGS, "constant")).loss
    stderr = (loss + exact).std().item() / math.sqrt(len(x))
    assert abs((loss + exact).mean().item()) < 4 * stderr + 1e-9


@pytest.mark.parametrize("name", BOUNDS)
def test_every_bound_at_beta_one_bounds_the_nll_from_above(name):
    objective = default(OBJECTIVES, name)
    model, x, exact = linear_gaussian(shift=2.0, inflate=8.0)  # a posterior far from the exact one
    torch.manual_seed(0)
    loss = objective.terms(model, x, 1.0, default(KL_WEIGHTINGS, "constant")).loss
    gap = loss + exact  # -bound - (-log p(x)) >= 0 in expectation, and here far above its noise
    assert gap.mean().item() > 3 * gap.std().item() / math.sqrt(len(x))
