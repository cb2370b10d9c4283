"""PIWAE (Rainforth et al. 2018): on the same draws, its loss is -IWAE of all M * K of them, the
generative network's gradient is that bound's, and the inference network's is MIWAE's, both computed
here from the model's log weights with torch.autograd.grad; the family contracts check it is a bound."""

import math

import pytest
import torch

from tests.test_kl_estimate import model_for
from vaezoo.core.errors import SpecError
from vaezoo.parts.kl_weightings import Constant
from vaezoo.parts.objectives import IWAE
from vaezoo.parts.objectives.piwae import PIWAE, inference_parameters
from vaezoo.spec.experiment import validate

ONE = Constant(beta=1.0)
M, K = 3, 4


def small_model(prior: str = "standard", posterior: str = "gaussian"):
    """test_kl_estimate's small model of the pair, in float64, and five binary images."""
    model = model_for(prior, posterior).double()
    x = torch.bernoulli(
        torch.full((5, 1, 28, 28), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    return model, x


def generative_parameters(model):
    inference = {id(p) for p in inference_parameters(model)}
    return [p for p in model.parameters() if p.requires_grad and id(p) not in inference]


def bounds(model, x, seed):
    """IWAE_{MK} and MIWAE_{M,K} per image from the model's own log weights on the draws of `seed`."""
    torch.manual_seed(seed)
    log_w = model.log_weights(x, M * K)  # (M K, B)
    iwae = torch.logsumexp(log_w, 0) - math.log(M * K)
    groups = log_w.reshape(M, K, -1)
    miwae = (torch.logsumexp(groups, 1) - math.log(K)).mean(0)
    return iwae, miwae


def gradients(loss, parameters):
    grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, parameters, strict=True)]


@pytest.mark.parametrize(
    ("prior", "posterior"), [("standard", "gaussian"), ("mixture", "gaussian"), ("standard", "iaf"), ("vamp", "planar")]
)
def test_the_decoder_follows_iwae_of_all_draws_and_the_encoder_follows_miwae(prior, posterior):
    model, x = small_model(prior, posterior)
    theta, phi = generative_parameters(model), inference_parameters(model)
    assert theta and phi
    torch.manual_seed(7)
    terms = PIWAE(outer=M, samples=K).terms(model, x, 1.0, ONE)
    model.zero_grad()
    terms.loss.mean().backward()
    iwae, miwae = bounds(model, x, seed=7)
    torch.testing.assert_close(terms.loss, -iwae)  # the reported bound is IWAE's of all M K draws
    for got, want in zip([p.grad for p in theta], gradients(-iwae.mean(), theta), strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip([p.grad for p in phi], gradients(-miwae.mean(), phi), strict=True):
        torch.testing.assert_close(got, want)
    # and the routing matters: the encoder's gradient is not IWAE's
    iwae, _ = bounds(model, x, seed=7)
    differs = [not torch.allclose(p.grad, g) for p, g in zip(phi, gradients(-iwae.mean(), phi), strict=True)]
    assert any(differs)


def test_one_outer_bound_is_iwae_in_value_and_in_every_gradient():
    model, x = small_model()
    grads = {}
    for name, objective in {"piwae": PIWAE(outer=1, samples=K), "iwae": IWAE(samples=K)}.items():
        torch.manual_seed(3)
        model.zero_grad()
        loss = objective.terms(model, x, 1.0, ONE).loss
        loss.mean().backward()
        grads[name] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(grads["piwae"][0], grads["iwae"][0])
    for a, b in zip(grads["piwae"][1], grads["iwae"][1], strict=True):
        torch.testing.assert_close(a, b)


def test_beta_scales_the_prior_ratio_inside_the_weights_as_for_iwae():
    model, x = small_model()
    torch.manual_seed(4)
    piwae = PIWAE(outer=M, samples=K).terms(model, x, 0.3, Constant(beta=0.3)).loss
    torch.manual_seed(4)
    iwae = IWAE(samples=M * K).terms(model, x, 0.3, Constant(beta=0.3)).loss
    torch.testing.assert_close(piwae, iwae)


def test_no_gradient_taken_no_extra_pass():
    model, x = small_model()
    with torch.no_grad():
        torch.manual_seed(5)
        loss = PIWAE(outer=M, samples=K).terms(model, x, 1.0, ONE).loss
    iwae, _ = bounds(model, x, seed=5)
    torch.testing.assert_close(loss, -iwae.detach())


@pytest.mark.parametrize("kl", ["free_bits", "capacity"])
def test_the_spec_refuses_a_penalty_that_is_not_beta_times_the_kl(kl):
    with pytest.raises(SpecError, match=f"objective piwae cannot use the KL weighting {kl}"):
        validate({"name": "t", "kl": {"kind": kl}, "objective": {"kind": "piwae"}}, "t")
