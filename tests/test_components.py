"""Every registered component, in every combination, builds and trains a step; specs match registries."""

import itertools
import typing

import pytest
import torch

from vaezoo.kl import KL_WEIGHTINGS
from vaezoo.likelihoods import LIKELIHOODS
from vaezoo.nn import DECODERS, ENCODERS
from vaezoo.objectives import OBJECTIVES
from vaezoo.runner import build_kl_weighting, build_model
from vaezoo.schema import build
from vaezoo.spec import DecoderSpec, EncoderSpec, ExperimentSpec, KLSpec, LikelihoodSpec, ObjectiveSpec

IMAGE = (1, 28, 28)
COMBINATIONS = [
    combo
    for combo in itertools.product(ENCODERS.names(), DECODERS.names(), LIKELIHOODS.names(), KL_WEIGHTINGS.names(), OBJECTIVES.names())
    if OBJECTIVES.get(combo[4]).accepts(KL_WEIGHTINGS.get(combo[3]))
]


def small_spec(encoder: str, decoder: str, likelihood: str, kl: str, objective: str = "elbo", **likelihood_fields) -> ExperimentSpec:
    layers = {"mlp": {"hidden": [16]}, "conv": {"channels": [4, 8]}}
    return ExperimentSpec.model_validate(
        {
            "name": "t",
            "model": {
                "latent_dim": 3,
                "encoder": {"kind": encoder, **layers[encoder]},
                "decoder": {"kind": decoder, **layers[decoder]},
                "likelihood": {"kind": likelihood, **likelihood_fields},
            },
            "kl": {"kind": kl},
            "objective": {"kind": objective},
        }
    )


@pytest.mark.parametrize(("encoder", "decoder", "likelihood", "kl", "objective"), COMBINATIONS)
def test_every_combination_gives_a_finite_loss_and_gradients(encoder, decoder, likelihood, kl, objective):
    torch.manual_seed(0)
    spec = small_spec(encoder, decoder, likelihood, kl, objective)
    model = build_model(spec.model, IMAGE)
    x = torch.bernoulli(torch.full((5, *IMAGE), 0.3))
    weighting = build_kl_weighting(spec)
    beta = weighting.beta(step=7, total_steps=20)
    terms = build(OBJECTIVES, spec.objective).terms(model, x, beta, weighting)
    assert terms.recon_nll.shape == terms.kl.shape == (5,)
    assert torch.isfinite(terms.loss).all() and (terms.kl >= 0).all()
    terms.loss.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("sigma", ["fixed", "learned"])
@pytest.mark.parametrize("per_pixel", [True, False])
def test_gaussian_sigma_variants_build_and_learned_sigma_gets_gradient(sigma, per_pixel):
    spec = small_spec("mlp", "mlp", "gaussian", "constant", sigma=sigma, per_pixel=per_pixel, value=0.5)
    model = build_model(spec.model, IMAGE)
    model.elbo(torch.rand(3, *IMAGE)).loss.sum().backward()
    learned = [p for name, p in model.named_parameters() if name.startswith("likelihood")]
    assert len(learned) == (1 if sigma == "learned" else 0)
    if learned:
        assert learned[0].shape == (IMAGE if per_pixel else (1, 1, 1))
        assert learned[0].grad is not None and learned[0].grad.abs().sum() > 0


@pytest.mark.parametrize(("kernel", "stride", "depth"), [(4, 2, 2), (3, 2, 2), (5, 2, 2), (3, 1, 3), (3, 2, 3), (4, 3, 1)])
def test_conv_decoder_mirrors_back_to_28x28(kernel, stride, depth):
    layers = {"kind": "conv", "channels": [4] * depth, "kernel": kernel, "stride": stride}
    spec = ExperimentSpec.model_validate({"name": "t", "model": {"latent_dim": 2, "encoder": layers, "decoder": layers}})
    model = build_model(spec.model, IMAGE)
    assert model.decode(torch.zeros(6, 2)).shape == (6, *IMAGE)
    assert model.decode(torch.zeros(3, 6, 2)).shape == (3, 6, *IMAGE)  # importance samples as a leading axis


def union_tags(union) -> list[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return [typing.get_args(member.model_fields["kind"].annotation)[0] for member in members]


@pytest.mark.parametrize(
    ("union", "registry"),
    [
        (EncoderSpec, ENCODERS),
        (DecoderSpec, DECODERS),
        (LikelihoodSpec, LIKELIHOODS),
        (KLSpec, KL_WEIGHTINGS),
        (ObjectiveSpec, OBJECTIVES),
    ],
)
def test_union_tags_equal_registry_names(union, registry):
    assert union_tags(union) == registry.names()
    for name, component in registry.items():
        assert typing.get_args(component.Spec.model_fields["kind"].annotation) == (name,)
        assert component.Spec.model_config["extra"] == "forbid"


def test_objectives_refuse_weightings_they_cannot_honour():
    from vaezoo.errors import SpecError
    from vaezoo.spec import validate

    with pytest.raises(SpecError, match="objective iwae cannot use the KL weighting free_bits"):
        validate({"name": "t", "objective": {"kind": "iwae"}, "kl": {"kind": "free_bits"}}, "test")
