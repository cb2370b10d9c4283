"""Where q(z|x) meets p(z) (`vaezoo.model.latent`): the layout comes from the spec for every prior, a
code round-trips through its full latent, the parts carry no layout and no reference to each other or
to the model, a deepcopy is self-contained, and no parameter is counted twice or lost."""

import copy
import itertools
from typing import Literal

import pytest
import torch
from torch import nn

from tests.test_components import SMALL, fits, hierarchical_prior, posterior_for
from vaezoo.core.errors import SpecError
from vaezoo.core.schema import StrictModel
from vaezoo.model.latent import LatentLayout
from vaezoo.parts import POSTERIORS, PRIORS
from vaezoo.parts.ladder import LadderPosterior, LadderPrior
from vaezoo.spec.build import build_model, latent_layout
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)
LATENT = 3
# members that made the prior a layout and gave parts a back-reference: now the latent's, or gone
LAYOUT_MEMBERS = ("bind", "hierarchical", "code_note", "observed_dims", "observed", "code", "expand")
POSTERIOR_LAYOUT_MEMBERS = ("bind", "layer_sizes", "_prior")
# a hierarchy of three layers, so that expansion runs through more than one conditional
PRIOR_FIELDS = {**SMALL, "ladder": {"lower": [5, 4], "hidden": 8}, "mixture": {"components": 3}}


def model_for(prior: str, posterior: str | None = None, seed: int = 0):
    posterior = posterior or posterior_for(prior)
    spec = validate(
        {
            "name": "t",
            "model": {
                "latent_dim": LATENT,
                "encoder": {"hidden": [16]},
                "decoder": {"hidden": [16]},
                "prior": {"kind": prior, **PRIOR_FIELDS.get(prior, {})},
                "posterior": {"kind": posterior, **SMALL.get(posterior, {})},
            },
        },
        "test",
    )
    torch.manual_seed(seed)
    return spec, build_model(spec.model, IMAGE)


def images(n: int = 4) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, *IMAGE), 0.3), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prior", PRIORS.names())
def test_the_full_latent_is_laid_out_as_the_prior_spec_says(prior):
    spec, model = model_for(prior)
    layout = model.latent.layout
    expected = LatentLayout(tuple(spec.model.prior.layers(LATENT)), spec.model.prior.categories_per_variable())
    assert layout == latent_layout(spec.model) == expected
    assert layout.sizes == ((5, 4, LATENT) if prior == "ladder" else (LATENT,))
    assert layout.code_dim == model.latent_dim == LATENT and layout.dim == sum(layout.sizes)
    with torch.no_grad():
        draw = model.latent.draw(model.encoder(images()), samples=2)
        prior_draws = model.latent.sample(5, torch.Generator().manual_seed(1))
    assert draw.z.shape == (2, 4, layout.dim) and prior_draws.shape == (5, layout.dim)
    assert model.decoder.net[0][0].in_features == layout.observed_dim  # the decoder reads the bottom layer
    assert model.latent.observed(draw.z).shape[-1] == layout.observed_dim
    assert model.latent.code(draw.z).shape[-1] == layout.code_dim
    assert layout.hierarchical == hierarchical_prior(prior)
    # a note where the code is not the whole latent, not real values, or the prior's spec writes one (a codebook's)
    own_note = hasattr(spec.model.prior, "code_note")
    assert (layout.code_note is not None) == (layout.hierarchical or layout.categories is not None or own_note)


def test_a_prior_spec_without_layers_lays_out_one_flat_layer():
    class PlainSpec(StrictModel):  # a prior registered with a spec that says nothing of layers
        kind: Literal["plain"]

    assert LatentLayout.of(PlainSpec(kind="plain"), 4) == LatentLayout((4,))
    assert LatentLayout.of(PRIORS.get("ladder").Spec(kind="ladder", lower=[6, 5]), 4).sizes == (6, 5, 4)
    with pytest.raises(ValueError, match="at least one layer"):
        LatentLayout(())


@pytest.mark.parametrize("prior", PRIORS.names())
def test_a_code_round_trips_through_its_expansion(prior):
    _, model = model_for(prior)
    code = torch.randn(6, LATENT, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model.latent.expand(code)
        assert full.shape == (6, model.latent.layout.dim)
        assert torch.equal(model.latent.code(full), code)  # its top layer is the code
        assert torch.equal(model.decode(code), model.decode_latent(full))
        if not model.latent.layout.hierarchical:
            assert full is code


def test_a_hierarchys_expansion_fills_each_layer_with_the_conditional_mean_of_the_layer_above():
    _, model = model_for("ladder")
    prior = model.prior
    code = torch.randn(2, 7, LATENT, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z1, z2, z3 = model.latent.layout.split(model.latent.expand(code))
        mean2, _ = prior.conditionals[1](z3).chunk(2, dim=-1)
        mean1, _ = prior.conditionals[0](mean2).chunk(2, dim=-1)
    assert [z1.shape[-1], z2.shape[-1]] == [5, 4]
    assert torch.equal(z3, code) and torch.equal(z2, mean2) and torch.equal(z1, mean1)


@pytest.mark.parametrize("name", PRIORS.names())
def test_a_prior_is_a_density_with_no_layout_and_no_binding(name):
    prior = PRIORS.get(name)
    assert [member for member in LAYOUT_MEMBERS if hasattr(prior, member)] == []


@pytest.mark.parametrize("name", POSTERIORS.names())
def test_a_posterior_has_no_binding_and_no_layer_sizes_of_its_own(name):
    posterior = POSTERIORS.get(name)
    assert [member for member in POSTERIOR_LAYOUT_MEMBERS if hasattr(posterior, member)] == []


def foreign_modules(part: nn.Module) -> list[str]:
    """Attributes of any module inside `part` (lists, tuples and dicts searched) that hold a module which
    is not one of that module's registered submodules: references to another part or the model."""
    found = []
    for owner_name, owner in part.named_modules():
        own = {id(child) for child in owner.children()}
        pending = [(f"{owner_name}.{key}", value) for key, value in vars(owner).items() if key != "_modules"]
        while pending:
            name, value = pending.pop()
            if isinstance(value, nn.Module) and id(value) not in own:
                found.append(name)
            elif isinstance(value, list | tuple):
                pending += [(f"{name}[{i}]", item) for i, item in enumerate(value)]
            elif isinstance(value, dict):
                pending += [(f"{name}[{key!r}]", item) for key, item in value.items()]
    return found


def pairs() -> list[tuple[str, str]]:
    return [
        (prior, posterior)
        for prior, posterior in itertools.product(PRIORS.names(), POSTERIORS.names())
        if fits(prior, posterior)
    ]


@pytest.mark.parametrize(("prior", "posterior"), pairs())
def test_no_part_holds_another_part_or_the_model(prior, posterior):
    _, model = model_for(prior, posterior)
    for name, part in model.named_children():
        assert foreign_modules(part) == [], name


def test_the_vamp_prior_and_the_ladder_posterior_hold_no_other_part():
    """The two parts that were bound to the model, by name: what they hold is their own."""
    _, vamp = model_for("vamp")
    _, ladder = model_for("ladder")
    assert foreign_modules(vamp.prior) == [] and foreign_modules(ladder.posterior) == []
    assert [name for name, _ in vamp.prior.named_parameters()] == ["raw_pseudo_inputs"]


def test_the_ladder_posterior_draws_only_through_a_ladder_prior_it_is_handed():
    _, model = model_for("ladder")
    features = model.encoder(images())
    with pytest.raises(TypeError, match="prior="):
        model.posterior.rsample(features)
    with pytest.raises(TypeError, match="prior="):
        model.posterior.rsample(features, prior=PRIORS.get("standard")(latent_dim=LATENT))
    assert isinstance(model.posterior, LadderPosterior) and isinstance(model.prior, LadderPrior)


@pytest.mark.parametrize("prior", PRIORS.names())
def test_a_deepcopy_points_only_inside_the_copy(prior):
    _, model = model_for(prior)
    model.eval()  # a training ELBO may move a part's own state (a codebook's EMA step), so compare in evaluation
    twin = copy.deepcopy(model)
    assert (twin.latent.encoder, twin.latent.posterior, twin.latent.prior) == (twin.encoder, twin.posterior, twin.prior)
    assert twin.latent.layout == model.latent.layout and twin.latent.estimate is model.latent.estimate
    originals = {id(t) for t in itertools.chain(model.parameters(), model.buffers())}
    assert not originals & {id(t) for t in itertools.chain(twin.parameters(), twin.buffers())}
    x = images()
    with torch.no_grad():
        before = model.elbo(x, torch.Generator().manual_seed(4))
        copied = twin.elbo(x, torch.Generator().manual_seed(4))
        torch.testing.assert_close(copied.kl, before.kl, rtol=0, atol=0)
        for p in twin.parameters():
            p.add_(0.5)
        after = model.elbo(x, torch.Generator().manual_seed(4))  # the original reads none of the copy
        torch.testing.assert_close(after.kl, before.kl, rtol=0, atol=0)
        torch.testing.assert_close(after.recon_nll, before.recon_nll, rtol=0, atol=0)


ENCODER = 784 * 16 + 16  # Linear(784, 16)
GAUSSIAN_HEAD = 16 * 2 * LATENT + 2 * LATENT  # Linear(16, 2D)


def decoder(observed: int) -> int:
    return observed * 16 + 16 + 16 * 784 + 784  # Linear(observed, 16), Linear(16, 784) without bias, the output bias


# (parameters of the prior, of the posterior, values the decoder reads), counted by hand from the papers' layers
HAND_COUNTS = {
    "standard": (0, GAUSSIAN_HEAD, LATENT),
    "mixture": (3 + 2 * 3 * LATENT, GAUSSIAN_HEAD, LATENT),  # logits, means, log-variances of K = 3
    "vamp": (4 * 784, GAUSSIAN_HEAD, LATENT),  # K = 4 pseudo-images
    # conditionals p(z2|z3): Linear(3, 8), Linear(8, 2 * 4); p(z1|z2): Linear(4, 8), Linear(8, 2 * 5)
    # posterior (residual, hidden 8): heads Linear(16 + 4, 10), Linear(8 + 3, 8), Linear(8, 6); paths
    # Linear(16, 8), Linear(8, 8)
    "ladder": (
        (3 * 8 + 8) + (8 * 8 + 8) + (4 * 8 + 8) + (8 * 10 + 10),
        (20 * 10 + 10) + (11 * 8 + 8) + (8 * 6 + 6) + (16 * 8 + 8) + (8 * 8 + 8),
        5,
    ),
    "categorical": (0, 16 * LATENT + LATENT, LATENT),  # uniform: no parameters; the gumbel head Linear(16, D)
    # the MADE over 3 positions of K = 4 codes: Linear(12, 8), Linear(8, 12) (the codebook is a buffer);
    # the vq head Linear(16, D)
    "codebook": ((12 * 8 + 8) + (8 * 12 + 12), 16 * LATENT + LATENT, LATENT),
}


@pytest.mark.parametrize("prior", PRIORS.names())
def test_parameter_counts_equal_a_hand_count(prior):
    assert prior in HAND_COUNTS, f"count the parameters of the new prior {prior} here"
    prior_count, posterior_count, observed = HAND_COUNTS[prior]
    _, model = model_for(prior)
    count = lambda module: sum(p.numel() for p in module.parameters())
    assert (count(model.prior), count(model.posterior)) == (prior_count, posterior_count)
    total = ENCODER + posterior_count + prior_count + decoder(observed)
    assert count(model) == total == sum(count(part) for part in model.children())
    state = model.state_dict()
    persistent = sum(t.numel() for name, t in model.named_buffers() if name in state)  # a codebook's, its EMAs
    assert sum(t.numel() for t in state.values()) == total + persistent  # every parameter once in a checkpoint


def test_the_ladders_checkpoint_keys_are_those_its_layers_always_had():
    _, model = model_for("ladder")
    keys = [key for key in model.state_dict() if key.startswith(("prior.", "posterior."))]
    assert keys == [
        *(f"posterior.paths.{i}.0.{p}" for i in (1, 2) for p in ("weight", "bias")),
        *(f"posterior.heads.{i}.{p}" for i in (0, 1, 2) for p in ("weight", "bias")),
        *(f"prior.conditionals.{i}.{j}.{p}" for i in (0, 1) for j in (0, 2) for p in ("weight", "bias")),
    ]


@pytest.mark.parametrize(("prior", "posterior"), list(itertools.product(PRIORS.names(), POSTERIORS.names())))
def test_the_spec_pairs_hierarchical_priors_and_posteriors_from_the_layout(prior, posterior):
    data = {"name": "t", "model": {"prior": {"kind": prior}, "posterior": {"kind": posterior}}}
    if fits(prior, posterior):
        validate(data, "test")
        return
    match = (
        "must both be hierarchical" if hierarchical_prior(prior) != POSTERIORS.get(posterior).hierarchical else "over"
    )
    with pytest.raises(SpecError, match=match) as error:
        validate(data, "test")
    assert "\n" not in str(error.value)
