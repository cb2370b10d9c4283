"""Gradient-norm clipping and the weight average: what they compute, that evaluation uses the
average, and that a run using them still resumes exactly."""

import pytest
import torch

from tests.test_train import TIMINGS, killed_after_epoch_1, spec_for
from vaezoo.evaluate.bounds import elbo_means
from vaezoo.runs import runner, saved_runs
from vaezoo.spec import build
from vaezoo.train.ema import WeightAverage, load_averaged


def test_weight_average_is_the_recursive_average():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    average = WeightAverage(model, decay=0.8)
    reference = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(7):
        optimizer.zero_grad()
        model(torch.randn(5, 3, dtype=torch.float64)).square().mean().backward()
        optimizer.step()
        average.update()
        reference = [0.8 * r + 0.2 * p.detach() for r, p in zip(reference, model.parameters(), strict=True)]
    for ours, theirs in zip(average.average, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    trained = [p.detach().clone() for p in model.parameters()]
    with average.applied():
        assert all(torch.equal(p, a) for p, a in zip(model.parameters(), average.average, strict=True))
    assert all(torch.equal(p, t) for p, t in zip(model.parameters(), trained, strict=True))


def test_a_weight_average_that_does_not_fit_the_model_is_refused():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        load_averaged(model, {"weight": torch.zeros(2, 2)})


def test_the_run_evaluates_and_reloads_with_the_average(tmp_path, synthetic_root):
    metrics = runner.run(spec_for(synthetic_root, train__ema=0.9), tmp_path, figures=False)
    checkpoint = torch.load(tmp_path / "tiny" / "checkpoint.pt", weights_only=True)
    loaded = saved_runs.load_run(tmp_path / "tiny")
    named = dict(loaded.model.named_parameters())
    assert all(torch.equal(named[k], v) for k, v in checkpoint["ema"].items())
    assert not all(torch.equal(checkpoint["model"][k], v) for k, v in checkpoint["ema"].items())
    assert metrics.test_neg_elbo == pytest.approx(elbo_means(loaded.model, loaded.data.test_images, 50).neg_elbo)


def test_clipping_bounds_the_step_gradient_and_logs_the_norm_before_it(tmp_path, synthetic_root):
    clip = 0.5
    runner.run(spec_for(synthetic_root, train__grad_clip=clip, train__log_every=1), tmp_path, figures=False)
    rows = (tmp_path / "tiny" / "scalars.csv").read_text().splitlines()[1:]
    header = (tmp_path / "tiny" / "scalars.csv").read_text().splitlines()[0].split(",")
    norms = [float(row.split(",")[header.index("grad_norm")]) for row in rows]
    assert max(norms) > clip  # these raw norms were clipped before the steps that used them


def test_huge_clip_changes_nothing(tmp_path, synthetic_root):
    plain = runner.run(spec_for(synthetic_root), tmp_path / "plain", figures=False)
    clipped = runner.run(spec_for(synthetic_root, train__grad_clip=1e6), tmp_path / "clipped", figures=False)
    assert plain.test_neg_elbo == clipped.test_neg_elbo


def test_the_clipped_gradient_has_the_bounded_norm(tmp_path, synthetic_root, monkeypatch):
    from vaezoo.train.loop import TrainConfig, fit

    spec = spec_for(synthetic_root, train__grad_clip=0.25, train__epochs=1)
    data = runner.datasets.load(spec.data, torch.device("cpu"))
    model = build.build_model(spec.model, (1, 28, 28))
    seen = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # the gradients Adam is about to use
        seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    fit(model, data, build.build_kl_weighting(spec), TrainConfig.from_spec(spec), tmp_path, False)
    assert seen and max(seen) <= 0.25 * (1 + 1e-5)


def test_a_run_with_clipping_and_the_average_resumes_exactly(tmp_path, synthetic_root, monkeypatch):
    spec = spec_for(synthetic_root, train__epochs=3, train__ema=0.9, train__grad_clip=1.0)
    whole = runner.run(spec, tmp_path / "whole", figures=False)
    killed_after_epoch_1(monkeypatch, spec, tmp_path / "killed")
    resumed = runner.run(spec, tmp_path / "killed", resume=True, figures=False)
    strip = lambda m: {k: v for k, v in m.to_json().items() if k not in TIMINGS}
    assert strip(resumed) == strip(whole)
    saved = [torch.load(tmp_path / d / "tiny" / "checkpoint.pt", weights_only=True) for d in ("whole", "killed")]
    assert all(torch.equal(saved[0]["ema"][k], saved[1]["ema"][k]) for k in saved[0]["ema"])
