"""A two-layer ladder trained briefly on real MNIST uses both of its layers: the collapse modes seen
before fail here (the lower layer's q becoming the prior's conditional, KL ~ 0; or the top layer
made redundant by a bottom-up shift that ignores it, KL ~ 0.02 nats)."""

from pathlib import Path

import pytest

from tests.conftest import needs_mnist
from vaezoo.runs.runner import run
from vaezoo.spec.experiment import validate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.mark.slow
@needs_mnist
def test_both_layers_of_the_zoos_ladder_carry_information(tmp_path):
    spec = validate(
        {
            "name": "ladder",
            "data": {"dataset": "mnist", "binarize": "dynamic", "val_size": 40000},
            "model": {
                "latent_dim": 50,
                "encoder": {"kind": "mlp", "hidden": [200, 200], "activation": "tanh"},
                "decoder": {"kind": "mlp", "hidden": [200, 200], "activation": "tanh"},
                "prior": {"kind": "ladder", "lower": [100], "hidden": 100},
                "posterior": {"kind": "ladder", "hidden": 100},
            },
            "kl": {"kind": "linear", "beta": 1.0, "warmup_steps": 300},
            "train": {"epochs": 3, "batch_size": 128, "device": "cpu"},
            "eval": {"iw_samples": 2, "batch_size": 1000},
        },
        "test",
    )
    metrics = run(spec, tmp_path, figures=False)
    bottom, top = metrics.layer_kl
    assert bottom > 2.0 and top > 1.0, metrics.layer_kl
    assert all(units > 0 for units in metrics.layer_active_units)
