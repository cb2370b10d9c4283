"""The decoder's output starts at the likelihood's parameters for the data's mean image, for every
decoder and likelihood kind (through the registries), and a run records and applies it."""

import itertools
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_spec
from tests.test_components import SMALL
from vaezoo import data as datasets
from vaezoo.parts import DECODERS, LIKELIHOODS
from vaezoo.runs.runner import run
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)


def model_for(decoder: str, likelihood: str):
    binarize = LIKELIHOODS.get(likelihood).needs_binarize or "dynamic"
    spec = validate(
        {
            "name": "t",
            "data": {"binarize": binarize},
            "model": {
                "latent_dim": 3,
                "decoder": {"kind": decoder, **SMALL[decoder]},
                "likelihood": {"kind": likelihood},
            },
        },
        "test",
    )
    return build_model(spec.model, IMAGE)


def pixel_stats(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand(IMAGE, generator=generator) * 0.98 + 0.01
    return mean, 0.01 + 0.1 * torch.rand(IMAGE, generator=generator)


@pytest.mark.parametrize(("decoder", "likelihood"), list(itertools.product(DECODERS.names(), LIKELIHOODS.names())))
def test_init_output_adds_the_likelihoods_initial_parameters_last(decoder, likelihood):
    torch.manual_seed(0)
    model = model_for(decoder, likelihood)
    z = torch.randn(2, 5, 3)  # importance samples' leading axis included
    before = model.decode_latent(z)
    mean, std = pixel_stats()
    model.init_output(mean, std)
    expected = model.likelihood.initial_params(mean, std)
    assert expected.shape == before.shape[-3:]
    torch.testing.assert_close(model.decode_latent(z) - before, expected.expand_as(before), atol=1e-5, rtol=0)


@pytest.mark.parametrize("likelihood", LIKELIHOODS.names())
def test_the_initial_parameters_model_the_mean_image(likelihood):
    """With the network contributing nothing, every pixel's expected value is the data's mean (with a
    small spread: a grey-level likelihood's edge levels take its tails)."""
    model = model_for("mlp", likelihood)
    mean, std = pixel_stats(1)
    std = torch.full_like(std, 0.002)
    params = model.likelihood.initial_params(mean, std)
    torch.testing.assert_close(model.likelihood.mean(params), mean, atol=2e-3, rtol=0)


def test_bernoulli_starts_at_the_clipped_mean_log_odds():
    model = model_for("mlp", "bernoulli")
    mean = torch.zeros(IMAGE)
    mean[0, 14, 14], mean[0, 0, 1] = 0.25, 1.0
    params = model.likelihood.initial_params(mean, mean)
    assert params[0, 14, 14].item() == pytest.approx(-1.0986, abs=1e-4)  # log(0.25 / 0.75)
    assert params[0, 0, 0].item() == pytest.approx(-6.9068, abs=1e-3)  # a pixel never on: clipped at 1e-3
    assert torch.isfinite(params).all() and params[0, 0, 1] > 6.9


def test_pixel_stats_are_the_binarized_datas_moments(synthetic_root: Path):
    spec = validate(tiny_spec(synthetic_root), "test")
    data = datasets.load(spec.data, torch.device("cpu"))
    mean, std = data.pixel_stats(seed=0)
    grey = data.train_images.double().div(255).mean(0)
    # one Bernoulli(v / 255) draw of each image: its mean is the grey mean up to sampling noise
    assert (mean - grey).abs().max() < 4 * (0.25 / data.n_train) ** 0.5 + 1e-9
    torch.testing.assert_close(std, (mean * (1 - mean)).sqrt())  # binary pixels


def test_a_run_records_its_output_init_and_starts_from_the_data(synthetic_root: Path, tmp_path: Path):
    losses = {}
    for output_init in ("data", "zero"):
        spec = validate(tiny_spec(synthetic_root, name=output_init, model__output_init=output_init), "test")
        run(spec, tmp_path, figures=False)
        assert f"output_init: {output_init}" in (tmp_path / output_init / "spec.yaml").read_text()
        history = (tmp_path / output_init / "history.jsonl").read_text().splitlines()
        losses[output_init] = json.loads(history[0])["train_loss"]
    assert losses["data"] < losses["zero"] - 50  # same seed, same steps: the first epoch starts far lower


def test_data_init_starts_near_the_mean_images_nll(synthetic_root: Path):
    """Before any step, the data-initialized model's reconstruction NLL is the mean image's, far below
    the p = 0.5 start (784 log 2 = 543 nats)."""
    spec = validate(tiny_spec(synthetic_root), "test")
    data = datasets.load(spec.data, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(spec.model, data.image_shape)
    with torch.no_grad():
        zero_start = model.elbo(data.val_images).recon_nll.mean().item()
        mean, std = data.pixel_stats(seed=0)
        model.init_output(mean.float(), std.float())
        data_start = model.elbo(data.val_images).recon_nll.mean().item()
        bits = data.val_images
        p = mean.float().clamp(1e-3, 1 - 1e-3)
        mean_image_nll = -(bits * p.log() + (1 - bits) * (1 - p).log()).sum((1, 2, 3)).mean().item()
    assert zero_start > 500
    assert data_start < zero_start - 100
    assert abs(data_start - mean_image_nll) < 0.1 * mean_image_nll
