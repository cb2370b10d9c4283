"""The latent diagnostics mean the same for every posterior (through the registry): they read each
code's moments under q(z|x) (a flow's transformed z, not its base Gaussian), and sampling noise does
not make a collapsed code look active."""

import pytest
import torch
from torch import nn

from tests.test_components import fits
from tests.test_kl_estimate import model_for as small_model
from vaezoo.evaluate import latents
from vaezoo.parts import POSTERIORS, PRIORS

IMAGE = (1, 28, 28)


def model_for(posterior: str):
    """A small model with the first prior that fits the posterior (hierarchical or flat, its latent space),
    in eval mode."""
    prior = next(name for name in PRIORS.names() if fits(name, posterior))
    return small_model(prior, posterior).eval()


def images(n: int = 300) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, *IMAGE), 0.3), generator=torch.Generator().manual_seed(5))


def collapse(model) -> None:
    """Every image gets the same posterior: the encoder's features no longer depend on x."""
    with torch.no_grad():
        for module in model.encoder.modules():
            if isinstance(module, nn.Linear):
                module.weight.zero_()


@pytest.mark.parametrize("posterior", POSTERIORS.names())
def test_a_collapsed_posterior_has_no_active_unit_whatever_its_kind(posterior):
    model = model_for(posterior)
    collapse(model)
    moments = latents.code_moments(model, images(), batch_size=100)
    stats = latents.latent_stats(model, moments.mean, moments.logvar, moments.noise)
    assert sum(stats.active) == 0
    layers = latents.layer_stats(model, images(), batch_size=100)
    assert layers is None or sum(layers.active_units) == 0


@pytest.mark.parametrize("posterior", POSTERIORS.names())
def test_code_means_are_the_codes_expectation_under_q(posterior):
    """An independent reference: the mean of many codes drawn through the posterior's own rsample."""
    model = model_for(posterior)
    x = images(20)
    moments = latents.code_moments(model, x, batch_size=100)
    with torch.no_grad():
        draws = model.latent.code(model.latent.draw(model.encoder(x), 20000, torch.Generator().manual_seed(6)).z)
    stderr = draws.std(0) / 20000**0.5
    exact_tolerance = 5 * stderr + 5 * (moments.logvar.exp().sqrt() / latents.MOMENT_SAMPLES**0.5) + 1e-4
    assert ((moments.mean - draws.mean(0)).abs() < exact_tolerance).all()
    torch.testing.assert_close(moments.logvar.exp(), draws.var(0), rtol=0.5, atol=1e-3)
