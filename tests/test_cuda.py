"""The CUDA training path: a step replayed from a captured graph trains the model an eager step trains.

Skipped without a GPU (CI has none); run them on one with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_spec
from vaezoo.runs import runner
from vaezoo.spec.experiment import validate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

VARIANTS = {
    "elbo-linear": {},
    "iwae": {"objective": {"kind": "iwae", "samples": 5}},
    "free-bits": {"kl": {"kind": "free_bits", "beta": 1.0, "nats": 0.1}},
    "gaussian-learned": {"model__likelihood": {"kind": "gaussian", "sigma": "learned"}, "data__binarize": "none"},
    "cosine-lr": {"train__lr_schedule": "cosine"},
    "clip-and-average": {"train__grad_clip": 1.0, "train__ema": 0.9},
    # M2: every class enumerated, the labelled subset a fixed device index gathered in the graph
    "m2": {
        "model__classes": 10,
        "model__classifier": {"kind": "mlp", "hidden": [16]},
        "objective": {"kind": "m2", "labelled": 20},
    },
}


def cuda_spec(root, graphs: bool, **changes):
    spec = tiny_spec(root, train__device="cuda", train__cuda_graphs=graphs, train__epochs=3, **changes)
    return validate(spec, "test")


@pytest.mark.parametrize("variant", VARIANTS)
def test_graph_replay_trains_what_eager_steps_train(tmp_path, synthetic_root, variant):
    changes = VARIANTS[variant]
    spec_graph, spec_eager = cuda_spec(synthetic_root, True, **changes), cuda_spec(synthetic_root, False, **changes)
    graphed = runner.run(spec_graph, tmp_path / "graph", figures=False)
    eager = runner.run(spec_eager, tmp_path / "eager", figures=False)
    # the same kernels on the same random streams; only the capturable Adam's device-side bias
    # correction differs from the eager one's host-side arithmetic, by rounding
    assert graphed.test_neg_elbo == pytest.approx(eager.test_neg_elbo, rel=1e-4)
    a = torch.load(tmp_path / "graph" / "tiny" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "eager" / "tiny" / "checkpoint.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_graph_replay_resumes_exactly(tmp_path, synthetic_root):
    whole = runner.run(cuda_spec(synthetic_root, True), tmp_path / "whole", figures=False)
    first = validate(tiny_spec(synthetic_root, train__device="cuda", train__epochs=3), "test").model_dump()
    first["train"]["epochs"] = 1
    runner.run(validate(first, "test"), tmp_path / "split", figures=False)
    (tmp_path / "split" / "tiny" / "metrics.json").unlink()
    (tmp_path / "split" / "tiny" / "spec.yaml").unlink()
    resumed = runner.run(cuda_spec(synthetic_root, True), tmp_path / "split", resume=True, figures=False)
    assert resumed.test_neg_elbo == whole.test_neg_elbo


def test_progress_polls_read_only_completed_copies(tmp_path, synthetic_root, monkeypatch):
    """Polled every step, the asynchronous reads never report a divergence that did not happen."""
    monkeypatch.setattr("vaezoo.train.loop.POLL_EVERY", 1)
    metrics = runner.run(cuda_spec(synthetic_root, True), tmp_path, figures=False)
    assert metrics.epochs == 3
