"""The conditional VAE (`model.classes`): labels reach the encoder and decoder, its ELBO is an
unconditional model's with the label folded into the first layers' biases, sampling a chosen digit uses
that label, and a run on the synthetic data writes the per-class figure and says its NLL is -log p(x|y)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import vaezoo
from tests.conftest import tiny_spec
from vaezoo.core.errors import ArgumentError, SpecError
from vaezoo.evaluate.bounds import elbo_means, importance_weighted_nll, log_likelihood_iw
from vaezoo.outputs.class_figures import class_labels, class_samples
from vaezoo.outputs.figures import applicable_figures
from vaezoo.parts import DECODERS, ENCODERS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

CLASSES = 10
SHAPE = (1, 28, 28)
SMALL = {"mlp": {"hidden": [16]}, "conv": {"channels": [4, 8]}, "resnet": {}}


def conditional(encoder: str = "mlp", decoder: str = "mlp", classes: int = CLASSES, seed: int = 0) -> vaezoo.VAE:
    torch.manual_seed(seed)
    model = {
        "latent_dim": 3,
        "classes": classes,
        "encoder": {"kind": encoder, **SMALL.get(encoder, {})},
        "decoder": {"kind": decoder, **SMALL.get(decoder, {})},
    }
    return build_model(validate({"name": "c", "model": model}, "test").model, SHAPE).eval()


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)).bernoulli()


@pytest.mark.parametrize("encoder", ENCODERS.names())
@pytest.mark.parametrize("decoder", DECODERS.names())
def test_the_encoder_and_decoder_of_every_kind_read_the_label(encoder, decoder):
    model = conditional(encoder, decoder)
    x, z = images(4), torch.randn(4, 3)
    with torch.no_grad():
        zeros, threes = torch.zeros(4, dtype=torch.long), torch.full((4,), 3)
        assert not torch.allclose(model.decode(z, zeros), model.decode(z, threes))
        assert not torch.allclose(model.encode(x, zeros).mu, model.encode(x, threes).mu)
        # images of a batch with different labels are decoded each with its own
        mixed = model.decode(z, torch.tensor([0, 3, 0, 3]))
        assert torch.allclose(mixed[1], model.decode(z, threes)[1])
        assert torch.allclose(mixed[2], model.decode(z, zeros)[2])


def folded(model: vaezoo.VAE, label: int) -> vaezoo.VAE:
    """An unconditional copy of an MLP conditional model with the one-hot of `label` folded into the biases
    of the two layers that read it: the label's weight column added to the bias, the label's inputs dropped."""
    plain = copy.deepcopy(model)
    plain.classes = 0
    for parent, name in ((plain.posterior, "head"), (plain.decoder.net[0], "0")):
        layer = getattr(parent, name)
        width = layer.in_features - model.classes
        smaller = nn.Linear(width, layer.out_features)
        with torch.no_grad():
            smaller.weight.copy_(layer.weight[:, :width])
            smaller.bias.copy_(layer.bias + layer.weight[:, width + label])
        setattr(parent, name, smaller)
    return plain


@pytest.mark.parametrize("label", [0, 7])
def test_the_elbo_and_weights_given_a_label_are_those_of_the_model_with_the_label_in_its_biases(label):
    model = conditional()
    plain = folded(model, label)
    x, y = images(5), torch.full((5,), label)
    with torch.no_grad():
        given = model.elbo(x, torch.Generator().manual_seed(3), y=y)
        direct = plain.elbo(x, torch.Generator().manual_seed(3))
        assert torch.allclose(given.recon_nll, direct.recon_nll, atol=1e-4)
        assert torch.allclose(given.kl, direct.kl, atol=1e-5)
        weights = model.log_weights(x, 7, torch.Generator().manual_seed(4), y=y)
        assert torch.allclose(weights, plain.log_weights(x, 7, torch.Generator().manual_seed(4)), atol=1e-4)


def test_the_bounds_over_a_dataset_read_each_images_label():
    model, x = conditional(), images(8)
    labels = torch.arange(8) % CLASSES
    k = 5
    by_batch = importance_weighted_nll(model, x, k, batch_size=3, labels=labels).per_image
    one_by_one = torch.cat(
        [
            -log_likelihood_iw(model, x[i : i + 1], k, torch.Generator().manual_seed(0), y=labels[i : i + 1])
            for i in range(8)
        ]
    )
    assert by_batch.shape == (8,)
    # other noise per image, so only the order of magnitude agrees; the labels must reach each batch
    assert torch.allclose(by_batch, one_by_one.cpu(), rtol=0.2)
    shifted = importance_weighted_nll(model, x, k, batch_size=3, labels=(labels + 1) % CLASSES).per_image
    assert not torch.allclose(by_batch, shifted)
    assert elbo_means(model, x, 3, labels) != elbo_means(model, x, 3, (labels + 1) % CLASSES)


def test_an_unconditional_model_ignores_labels():
    torch.manual_seed(0)
    model = build_model(validate({"name": "u"}, "test").model, SHAPE).eval()
    x = images(4)
    with torch.no_grad():
        a = model.elbo(x, torch.Generator().manual_seed(2), y=torch.full((4,), 5))
        b = model.elbo(x, torch.Generator().manual_seed(2))
    assert torch.equal(a.loss, b.loss)
    assert "class_samples" not in applicable_figures(model)
    assert "class_samples" in applicable_figures(conditional())


def test_sampling_a_chosen_digit_decodes_with_that_label():
    model = conditional()
    threes = model.sample(6, torch.Generator().manual_seed(5), torch.full((6,), 3))
    z = model.latent.sample(6, torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(threes, model.likelihood.mean(model.decode_latent(z, torch.full((6,), 3))))
        assert not torch.allclose(threes, model.sample(6, torch.Generator().manual_seed(5), torch.full((6,), 5)))
    # without labels, the classes in turn
    turns = model.sample(12, torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model.likelihood.mean(
            model.decode_latent(model.latent.sample(12, torch.Generator().manual_seed(5)), torch.arange(12) % CLASSES)
        )
    assert torch.allclose(turns, expected)


def test_the_class_figure_decodes_the_same_draws_with_each_label():
    model = conditional()
    cells = class_samples(model, per_class=4, seed=2)
    assert cells.shape == (CLASSES * 4, *SHAPE)
    assert class_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    z = model.latent.sample(4, torch.Generator().manual_seed(2))
    with torch.no_grad():
        sevens = model.likelihood.mean(model.decode_latent(z, torch.full((4,), 7)))
    assert torch.allclose(cells[28:32], sevens)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"classes": 7}}, "has 10 classes"),
        ({"model": {"classes": 10}, "objective": {"kind": "iwae"}}, "does not read labels"),
        ({"model": {"classes": 10, "prior": {"kind": "vamp"}}}, "pseudo-inputs"),
    ],
)
def test_a_conditional_spec_that_cannot_work_is_refused(change, message):
    with pytest.raises(SpecError, match=message):
        validate({"name": "c", **change}, "spec")


def test_a_conditional_run_writes_its_class_figure_and_labels_its_nll(tmp_path, synthetic_root):
    spec = tiny_spec(synthetic_root, name="cvae")
    spec["model"]["classes"] = 10
    spec["eval"] |= {"family_metrics": False, "fid_samples": 0}
    run = vaezoo.run(spec, out=tmp_path, progress=False, train__epochs=1, eval__iw_samples=2)
    assert run.metrics.likelihood_of == "p(x|y)"
    report = (run.path / "report.md").read_text()
    assert "of p(x\\|y): given each image's label" in report  # "|" escaped in a Markdown table cell
    assert (run.path / "figures" / "class_samples.png").stat().st_size > 0
    threes = run.sample(4, seed=1, label=3)
    expected = run.model.sample(4, torch.Generator().manual_seed(1), torch.full((4,), 3))
    assert torch.equal(threes, expected)
    with pytest.raises(ArgumentError, match="label"):
        run.sample(4, label=10)
    # the API reads labels wherever the model does: one per image, or one int for all, and never silently none
    x, y = run.data.test_images[:5], run.data.test_labels[:5]
    with torch.no_grad():
        expected = run.model.likelihood.mean(run.model.decode(run.model.encode(x, y).mu, y))
    assert torch.allclose(run.reconstruct(x, labels=y), expected)
    assert torch.allclose(run.reconstruct(x, labels=y.tolist()), expected)
    assert torch.equal(run.encode(x, labels=3).mu, run.model.encode(x, torch.full((5,), 3)).mu)
    assert run.interpolate(x[0], x[1], steps=4, label=int(y[0])).shape == (4, *x.shape[1:])
    for call, message in [
        (lambda: run.reconstruct(x), "conditional .*give each image's label"),
        (lambda: run.encode(x, labels=[1, 2]), "5 whole-number labels"),
        (lambda: run.encode(x, labels=[0, 1, 2, 3, 10]), "from 0 to 9"),
        (lambda: run.interpolate(x[0], x[1]), "label: this run's model is conditional"),
        (lambda: run.encode(x, labels=torch.zeros(5)), "whole-number labels"),
    ]:
        with pytest.raises(ArgumentError, match=message):
            call()
    from vaezoo.cli.main import main

    assert (
        main(["interpolate", str(run.path), "--a", "0", "--b", "1", "--label", "3", "--out", str(tmp_path / "i.png")])
        == 0
    )
    assert main(["interpolate", str(run.path), "--out", str(tmp_path / "j.png")]) == 2  # no label for its path
    assert main(["traverse", str(run.path), "--out", str(tmp_path / "t.png")]) == 2
    assert main(["sample", str(run.path), "-n", "8", "--label", "3", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["sample", str(run.path), "--label", "10", "--out", str(tmp_path / "u.png")]) == 2
    assert (tmp_path / "i.png").exists() and (tmp_path / "s.png").exists()
    assert not (tmp_path / "j.png").exists() and not (tmp_path / "u.png").exists()


def test_a_conditional_model_gets_no_figure_it_would_decode_without_a_label():
    kinds = applicable_figures(conditional())
    assert {"reconstructions", "samples", "class_samples", "latent_scatter"} <= set(kinds)
    assert not {"interpolation", "traversal", "manifold"} & set(kinds)
    two_d = conditional()
    two_d.latent_dim = 2  # the manifold's other condition: it is the label that rules it out
    assert "manifold" not in applicable_figures(two_d)


def test_reconstructions_of_a_conditional_model_read_each_digits_label():
    from vaezoo.outputs.grids import pick_examples, reconstructions_grid, tile

    model, x = conditional(), images(20, seed=3)
    labels = torch.arange(20) % CLASSES
    picked = pick_examples(labels, 10, 20)
    with torch.no_grad():
        mu, _ = model.encode(x[picked], labels[picked])
        expected = model.likelihood.mean(model.decode(mu, labels[picked]))
        unlabelled = model.likelihood.mean(model.decode(model.encode(x[picked]).mu))
    assert not torch.allclose(expected, unlabelled)  # the label matters to this model
    grid = reconstructions_grid(model, x, n=10, labels=labels)
    assert torch.allclose(grid, tile(torch.cat([x[picked], expected]), 10).clamp(0, 1), atol=1e-6)


def test_an_unconditional_model_takes_no_labels_and_a_conditional_one_needs_them():
    from vaezoo.runs.arguments import label_argument

    assert label_argument(None, 3, classes=0) is None
    with pytest.raises(ArgumentError, match="not conditional"):
        label_argument([1, 2, 3], 3, classes=0)
    assert label_argument(7, 3, classes=10).tolist() == [7, 7, 7]
    assert label_argument(torch.tensor(2), 2, classes=10).tolist() == [2, 2]
    with pytest.raises(ArgumentError, match="give each image's label"):
        label_argument(None, 3, classes=10)
