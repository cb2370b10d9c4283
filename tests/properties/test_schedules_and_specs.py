"""Property-based tests of the KL weightings and of spec round trips."""

import itertools
import math

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vaezoo.parts.kl_weightings import Cyclical, Linear
from vaezoo.spec.experiment import parse_yaml, validate

betas = st.floats(0.0, 100.0)
totals = st.integers(1, 100_000)


@given(betas, st.integers(1, 10_000), totals, st.lists(st.integers(0, 50_000), min_size=2, max_size=20))
def test_linear_rises_monotonically_within_bounds_and_reaches_beta_at_its_step(beta, warmup, total, steps):
    schedule = Linear(beta=beta, warmup_steps=warmup)
    values = [schedule.beta(s, total) for s in sorted(steps)]
    assert all(0 <= v <= beta for v in values)
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert (
        schedule.beta(0, total) == 0
        and schedule.beta(warmup, total) == beta
        and schedule.beta(warmup * 3, total) == beta
    )


@given(betas.filter(lambda b: b > 0), st.integers(1, 20), st.floats(0.05, 1.0), st.integers(1, 5000), st.data())
def test_cyclical_stays_in_bounds_and_has_the_stated_period(beta, cycles, ratio, period, data):
    total = cycles * period
    schedule = Cyclical(beta=beta, cycles=cycles, ratio=ratio)
    step = data.draw(st.integers(0, total - 1))
    value = schedule.beta(step, total)
    assert 0 <= value <= beta
    if step + period < total:
        assert math.isclose(schedule.beta(step + period, total), value, rel_tol=1e-9, abs_tol=1e-12)
    assert schedule.beta(0, total) == 0 and schedule.beta(step - step % period, total) == 0
    assert schedule.beta(period - 1, total) == beta or (period - 1) / period < ratio


layers = st.lists(st.integers(1, 512), min_size=1, max_size=3)
activations = st.sampled_from(["relu", "elu", "gelu", "silu", "tanh", "leaky_relu"])
networks = st.one_of(
    st.fixed_dictionaries({"kind": st.just("mlp"), "hidden": layers, "activation": activations}),
    st.fixed_dictionaries(
        {
            "kind": st.just("conv"),
            "channels": st.lists(st.integers(1, 64), min_size=1, max_size=3),
            "kernel": st.integers(1, 7),
            "stride": st.integers(1, 3),
        }
    ),
)
likelihoods = st.one_of(
    st.fixed_dictionaries({"kind": st.just("bernoulli")}),
    st.fixed_dictionaries(
        {
            "kind": st.just("gaussian"),
            "sigma": st.sampled_from(["fixed", "learned"]),
            "value": st.floats(1e-3, 10.0),
            "per_pixel": st.booleans(),
        }
    ),
)
weightings = st.one_of(
    st.fixed_dictionaries({"kind": st.just("constant"), "beta": st.floats(0, 50)}),
    st.fixed_dictionaries({"kind": st.just("linear"), "beta": st.floats(0, 50), "warmup_steps": st.integers(1, 10**6)}),
    st.fixed_dictionaries(
        {
            "kind": st.just("cyclical"),
            "beta": st.floats(0, 50),
            "cycles": st.integers(1, 100),
            "ratio": st.floats(0.01, 1.0),
        }
    ),
)
specs = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,20}", fullmatch=True),
        "seed": st.integers(0, 2**40),
        "data": st.fixed_dictionaries(
            {"binarize": st.sampled_from(["none", "dynamic", "static"]), "val_size": st.integers(0, 59000)}
        ),
        "model": st.fixed_dictionaries(
            {"latent_dim": st.integers(1, 256), "encoder": networks, "decoder": networks, "likelihood": likelihoods}
        ),
        "kl": weightings,
        "train": st.fixed_dictionaries(
            {"epochs": st.integers(1, 1000), "batch_size": st.integers(1, 4096), "lr": st.floats(1e-6, 1.0)}
        ),
    }
)


@settings(max_examples=200, deadline=None)
@given(specs)
def test_any_valid_spec_survives_yaml_dump_and_load(data):
    spec = validate(data, "generated")
    again = validate(parse_yaml(spec.to_yaml(), "dump"), "dump")
    assert again == spec
    assert yaml.safe_load(spec.to_yaml()) == spec.model_dump(mode="json")
