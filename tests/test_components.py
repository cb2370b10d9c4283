"""Every registered component, in every combination, builds and trains a step; specs match registries."""

import itertools
import typing

import pytest
import torch

from vaezoo.core.errors import SpecError
from vaezoo.parts import LIKELIHOODS, POSTERIORS, PRIORS
from vaezoo.parts.objectives import OBJECTIVES
from vaezoo.spec.build import build_kl_weighting, build_model, build_objective
from vaezoo.spec.experiment import SLOTS, ExperimentSpec, set_dotted, validate

IMAGE = (1, 28, 28)
# small networks, whatever the slot
SMALL = {
    "mlp": {"hidden": [16]},
    "conv": {"channels": [4, 8]},
    "resnet": {"channels": [4, 8], "blocks": 1},
    "vamp": {"pseudo_inputs": 4},
    "ladder": {"hidden": 8},
    "planar": {"steps": 2},
    "iaf": {"steps": 2, "hidden": 16, "context": 8},
    "categorical": {"categories": 3},  # latent_dim 3: one variable of three categories
    "codebook": {"codes": 4, "code_dim": 1, "hidden": 8},  # latent_dim 3: three positions of one value
}
# slots whose kinds interact (shapes; the KL and its estimate) are crossed; the others vary alone
CROSSED = (
    ("model.encoder", "model.decoder", "model.likelihood"),
    ("model.prior", "model.posterior", "kl", "objective"),
)


def spec_for(choice: dict[str, str], **likelihood_fields) -> ExperimentSpec:
    """A small spec with the given kind in each named slot (defaults elsewhere), on data the likelihood models."""
    data: dict = {"name": "t", "model": {"latent_dim": 3, "encoder": {"hidden": [16]}, "decoder": {"hidden": [16]}}}
    for path, kind in choice.items():
        set_dotted(data, path, {"kind": kind, **SMALL.get(kind, {})})
    likelihood = LIKELIHOODS.get(choice.get("model.likelihood", "bernoulli"))
    data["data"] = {"binarize": likelihood.needs_binarize or "dynamic"}
    set_dotted(data, "model.likelihood", {"kind": likelihood_kind(choice), **likelihood_fields})
    return validate(data, "test")


def hierarchical_prior(prior: str) -> bool:
    """True where the prior's spec (at its defaults) lays the latent out in more than one layer."""
    return len(PRIORS.get(prior).Spec(kind=prior).layers(1)) > 1


def fits(prior: str, posterior: str) -> bool:
    """True where the spec pairs them: both hierarchical or both flat, over the same latent space."""
    prior_cls, posterior_cls = PRIORS.get(prior), POSTERIORS.get(posterior)
    return hierarchical_prior(prior) == posterior_cls.hierarchical and prior_cls.space == posterior_cls.space


def posterior_for(prior: str) -> str:
    """The first posterior that fits the prior (`fits`)."""
    return next(name for name in POSTERIORS.names() if fits(prior, name))


def likelihood_kind(choice: dict[str, str]) -> str:
    return choice.get("model.likelihood", "bernoulli")


def combinations() -> list[dict[str, str]]:
    """Every kind of every slot, built from the slot table; the interacting slots in every valid combination."""
    slots = {slot.path: slot for slot in SLOTS}
    combos = [{slot.path: kind} for slot in SLOTS for kind in slot.registry.names()]
    for group in CROSSED:
        combos += [dict(zip(group, kinds)) for kinds in itertools.product(*(slots[p].registry.names() for p in group))]
    valid = []
    for combo in combos:
        try:
            spec_for(combo)
        except SpecError:
            continue  # a combination the spec refuses (checked by its own tests)
        if combo not in valid:
            valid.append(combo)
    return valid


def example_images(spec: ExperimentSpec, n: int = 5) -> torch.Tensor:
    """Binary images, or 8-bit grey levels v / 255 where the likelihood models those."""
    levels = torch.randint(0, 256, (n, *IMAGE), generator=torch.Generator().manual_seed(0)).float() / 255
    return levels if spec.data.binarize == "none" else torch.bernoulli(torch.full((n, *IMAGE), 0.3))


@pytest.mark.parametrize("choice", combinations(), ids=lambda c: "-".join(c.values()))
def test_every_combination_gives_a_finite_loss_and_gradients(choice):
    torch.manual_seed(0)
    spec = spec_for(choice)
    model = build_model(spec.model, IMAGE)
    x = example_images(spec)
    weighting = build_kl_weighting(spec)
    beta = weighting.beta(step=7, total_steps=20)
    terms = build_objective(spec, 100).terms(model, x, beta, weighting)
    assert terms.recon_nll.shape == terms.kl.shape == (5,)
    assert torch.isfinite(terms.loss).all()
    assert (terms.kl >= 0).all() or not model.kl_estimate.per_dimension  # a one-sample KL estimate can be negative
    assert terms.kl_per_dim is None or model.kl_estimate.per_dimension
    terms.loss.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    if OBJECTIVES.get(spec.objective.kind).is_bound:  # a bound trains every part; a WAE leaves its prior alone
        assert all(g is not None for g in grads)


def small_spec(
    encoder: str, decoder: str, likelihood: str, kl: str, objective: str = "elbo", **likelihood_fields
) -> ExperimentSpec:
    choice = {
        "model.encoder": encoder,
        "model.decoder": decoder,
        "model.likelihood": likelihood,
        "kl": kl,
        "objective": objective,
    }
    return spec_for(choice, **likelihood_fields)


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


@pytest.mark.parametrize(
    ("kernel", "stride", "depth"), [(4, 2, 2), (3, 2, 2), (5, 2, 2), (3, 1, 3), (3, 2, 3), (4, 3, 1)]
)
def test_conv_decoder_mirrors_back_to_28x28(kernel, stride, depth):
    layers = {"kind": "conv", "channels": [4] * depth, "kernel": kernel, "stride": stride}
    spec = ExperimentSpec.model_validate(
        {"name": "t", "model": {"latent_dim": 2, "encoder": layers, "decoder": layers}}
    )
    model = build_model(spec.model, IMAGE)
    assert model.decode(torch.zeros(6, 2)).shape == (6, *IMAGE)
    assert model.decode(torch.zeros(3, 6, 2)).shape == (3, 6, *IMAGE)  # importance samples as a leading axis


@pytest.mark.parametrize("slot", SLOTS, ids=lambda slot: slot.path)
def test_slot_kinds_equal_registry_names(slot):
    """A slot takes exactly its registry's kinds, each as that component's own Spec (kind literal, extra forbidden)."""
    registry = slot.registry
    assert slot.default in registry.names()
    for name, component in registry.items():
        assert typing.get_args(component.Spec.model_fields["kind"].annotation) == (name,)
        assert component.Spec.model_config["extra"] == "forbid"
        assert type(slot.validate({"kind": name})) is component.Spec
    with pytest.raises(ValueError, match=f"known: {', '.join(registry.names())}$"):
        slot.validate({"kind": "no-such-kind"})


def test_objectives_refuse_weightings_they_cannot_honour():
    with pytest.raises(SpecError, match="objective iwae cannot use the KL weighting free_bits"):
        validate({"name": "t", "objective": {"kind": "iwae"}, "kl": {"kind": "free_bits"}}, "test")
