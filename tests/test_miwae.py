"""MIWAE and CIWAE (Rainforth et al. 2018) against IWAE and the ELBO on the same draws, and their
order on a model whose posterior is not exact (the family contracts check that they are bounds)."""

import math

import torch

from tests.linear_gaussian import linear_gaussian
from vaezoo.parts.kl_weightings import Constant
from vaezoo.parts.objectives import IWAE
from vaezoo.parts.objectives.iwae import importance_weights
from vaezoo.parts.objectives.miwae import CIWAE, MIWAE

ONE = Constant(beta=1.0)


def data(**model_options):
    torch.manual_seed(1234)  # the model's images come from the global generator: the same ones every call
    return linear_gaussian(**model_options)


def loss(objective, seed: int = 0, **model_options) -> torch.Tensor:
    model, x, _ = data(**model_options)
    torch.manual_seed(seed)
    return objective.terms(model, x, 1.0, ONE).loss


def test_one_outer_bound_is_iwae_and_one_inner_sample_is_the_elbo_of_m_draws():
    torch.testing.assert_close(loss(MIWAE(outer=1, samples=7)), loss(IWAE(samples=7)))
    model, x, _ = data(shift=0.6, inflate=3.0)
    torch.manual_seed(0)
    log_w = importance_weights(model, x, 5, 1.0).log_w
    torch.manual_seed(0)
    torch.testing.assert_close(MIWAE(outer=5, samples=1).terms(model, x, 1.0, ONE).loss, -log_w.mean(0))


def test_ciwae_runs_from_iwae_to_the_elbo_on_the_same_draws():
    options = {"shift": 0.6, "inflate": 3.0}
    torch.testing.assert_close(loss(CIWAE(mix=0.0, samples=9), **options), loss(IWAE(samples=9), **options))
    model, x, _ = data(**options)
    torch.manual_seed(0)
    log_w = importance_weights(model, x, 9, 1.0).log_w
    half = loss(CIWAE(mix=0.5, samples=9), **options)
    torch.testing.assert_close(half, -(0.5 * log_w.mean(0) + 0.5 * (torch.logsumexp(log_w, 0) - math.log(9))))


def test_miwae_sits_between_iwae_of_all_its_draws_and_the_elbo():
    options = {"shift": 1.0, "inflate": 4.0}
    means = {}
    for name, objective in {
        "iwae64": IWAE(samples=64),
        "miwae": MIWAE(outer=8, samples=8),
        "elbo": IWAE(samples=1),
    }.items():
        means[name] = torch.stack([loss(objective, seed, **options) for seed in range(5)]).mean().item()
    assert means["iwae64"] < means["miwae"] < means["elbo"]
