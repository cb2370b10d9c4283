"""Property-based tests of sweep expansion: the product of the list lengths, with unique safe names."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from vaezoo.sweeps.grid import SweepSpec, expand

BASE = {"name": "base", "model": {"latent_dim": 4}}


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    variants=st.integers(0, 3),
    seeds=st.one_of(st.none(), st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True)),
)
def test_expansion_is_the_product_with_unique_safe_names(lengths, variants, seeds):
    keys = ["model.latent_dim", "train.batch_size", "kl.beta"][: len(lengths)]
    values = {"model.latent_dim": [2, 5, 9], "train.batch_size": [16, 32, 64], "kl.beta": [0.5, 1.0, 4.0]}
    sweep = SweepSpec.model_validate(
        {
            "name": "s",
            "base": BASE,
            "grid": {k: values[k][:n] for k, n in zip(keys, lengths)},
            # each variant sets something the grid and seeds leave alone: no two points are the same run
            "variants": [{"name": f"v{i}", "set": {"eval.iw_samples": i + 1}} for i in range(variants)],
            "seeds": seeds,
        }
    )
    points = expand(sweep, BASE, [], "test")
    assert len(points) == math.prod(lengths) * max(variants, 1) * len(seeds or [None])
    names = [p.name for p in points]
    assert len(set(names)) == len(names)
    assert all(p.spec.name == p.name and "/" not in p.name and not p.name.startswith(".") for p in points)
    for point in points:
        for key, value in point.varied.items():
            if key in values:
                section, field = key.split(".")
                assert getattr(getattr(point.spec, section), field) == value
        if "seed" in point.varied:
            assert point.spec.seed == point.varied["seed"]
