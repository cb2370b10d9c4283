"""Every figure is written as a sane PNG for every component kind; grid builders have exact shapes."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from PIL import Image  # Pillow comes with torchvision

from tests.records import history_row
from tests.test_components import SMALL, posterior_for
from vaezoo.evaluate.latents import posterior_params
from vaezoo.evaluate.records import HistoryRow
from vaezoo.outputs import figures, grids, plots
from vaezoo.parts import DECODERS, ENCODERS, PRIORS
from vaezoo.parts.likelihoods import LIKELIHOODS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)
CELL = 28 + grids.PADDING
# Each network kind is tried as both encoder and decoder (the other side mlp, if it has no such
# kind), so a new encoder, decoder or likelihood joins these tests by registering.
NETWORKS = sorted(set(ENCODERS.names()) | set(DECODERS.names()))
LATENT_DIMS = (2, 5)  # 2 adds the manifold
CASES = [
    (*case, prior) for case in itertools.product(NETWORKS, LIKELIHOODS.names(), LATENT_DIMS) for prior in PRIORS.names()
]


def covering_cases() -> list[tuple[str, str, int, str]]:
    """Fewest cases in which every network kind, likelihood and latent size appears at least once.

    Rendering PNGs costs about 3 s a run on a small CPU, whatever the model; the full product of
    component kinds is covered by the (cheap) grid-builder test instead.
    """
    likelihoods, priors = LIKELIHOODS.names(), PRIORS.names()
    count = max(len(NETWORKS), len(likelihoods), len(LATENT_DIMS), len(priors))
    return [
        (
            NETWORKS[i % len(NETWORKS)],
            likelihoods[i % len(likelihoods)],
            LATENT_DIMS[i % len(LATENT_DIMS)],
            priors[i % len(priors)],
        )
        for i in range(count)
    ]


def categories(prior: str, latent_dim: int) -> dict[str, int]:
    """The categories a categorical prior's spec needs for a latent of `latent_dim` (none for the others)."""
    return {"categories": latent_dim} if "categories" in PRIORS.get(prior).Spec.model_fields else {}


def small_model(network: str = "mlp", likelihood: str = "bernoulli", latent_dim: int = 5, prior: str = "standard"):
    encoder = network if network in ENCODERS.names() else "mlp"
    decoder = network if network in DECODERS.names() else "mlp"
    spec = validate(
        {
            "name": "figures",
            "data": {"binarize": LIKELIHOODS.get(likelihood).needs_binarize or "dynamic"},
            "model": {
                # small, so the file runs in seconds; a categorical latent of one variable of latent_dim categories
                "prior": {"kind": prior, **SMALL.get(prior, {}), **categories(prior, latent_dim)},
                "posterior": {"kind": posterior_for(prior), **SMALL.get(posterior_for(prior), {})},
                "latent_dim": latent_dim,
                "encoder": {"kind": encoder, **SMALL.get(encoder, {})},
                "decoder": {"kind": decoder, **SMALL.get(decoder, {})},
                "likelihood": {"kind": likelihood},
            },
        },
        "test",
    )
    torch.manual_seed(0)
    return build_model(spec.model, IMAGE)


def fake_data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.bernoulli(torch.full((n, *IMAGE), 0.3), generator=torch.Generator().manual_seed(0))
    return images, torch.arange(n) % 10


def fake_history(epochs: int = 3, val: bool = True) -> list[HistoryRow]:
    rows = []
    for epoch in range(1, epochs + 1):
        loss = 200.0 / epoch
        rows.append(
            history_row(
                epoch,
                train_loss=loss,
                train_recon=0.8 * loss,
                train_kl=0.2 * loss,
                beta=min(1.0, epoch / 2),
                lr=None,
                val_neg_elbo=loss - 5 if val else None,
                val_recon=0.8 * loss - 4 if val else None,
                val_kl=0.2 * loss - 1 if val else None,
                val_seconds=0.1 if val else None,
            )
        )
    return rows


def png_size(path: Path) -> tuple[int, int, str]:
    """Width, height and mode of a PNG that decodes completely."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        return image.width, image.height, image.mode


def assert_sane_png(path: Path) -> None:
    width, height, mode = png_size(path)
    assert 300 <= width <= 2500 and 200 <= height <= 2500, (path.name, width, height)
    assert mode in ("RGB", "RGBA")


@pytest.mark.parametrize(("network", "likelihood", "latent_dim", "prior"), CASES)
def test_grid_builders_work_for_every_component_kind(network, likelihood, latent_dim, prior):
    model = small_model(network, likelihood, latent_dim, prior)
    images, labels = fake_data()
    built = [grids.reconstructions_grid(model, images, labels=labels), grids.samples_grid(model, n=16)]
    if model.posterior.space == "real":  # paths and sweeps of values: not for categorical codes (figures.real_code)
        built.append(grids.interpolation_grid(model, images, labels, rows=2, steps=4))
        built.append(grids.traversal_grid(model, images[0], list(range(latent_dim)), dims=3))
    if latent_dim == 2 and model.posterior.space == "real":
        built.append(grids.manifold_grid(model, n=5))
    for grid in built:
        assert grid.shape[0] == 3 and torch.isfinite(grid).all() and grid.min() >= 0 and grid.max() <= 1


@pytest.mark.parametrize(("network", "likelihood", "latent_dim", "prior"), covering_cases())
def test_write_run_figures_writes_every_applicable_figure(tmp_path, network, likelihood, latent_dim, prior):
    model = small_model(network, likelihood, latent_dim, prior)
    images, labels = fake_data()
    kl = torch.rand(latent_dim, generator=torch.Generator().manual_seed(1)).tolist()
    active = [value > 0.5 for value in kl]
    out = tmp_path / "figures"
    mu, _ = posterior_params(model, images, batch_size=25)
    model.train()
    paths = figures.write_run_figures(model, images, labels, fake_history(), kl, active, mu, out)
    expected = {f"{kind}.png" for kind in figures.applicable_figures(model)}
    assert ("manifold.png" in expected) == (latent_dim == 2 and model.posterior.space == "real")
    assert {path.name for path in paths} == expected
    assert {path.name for path in out.iterdir() if path.is_file()} == expected  # no temporary files left behind
    strips = {path.stem: Image.open(path).size for path in (out / "strips").iterdir()}
    assert set(strips) == set(figures.comparison_kinds()) & set(figures.applicable_figures(model))
    assert len(set(strips.values())) == 1  # all one size
    for path in paths:
        assert_sane_png(path)
    assert model.training  # the caller's training flag is given back


def test_grid_shapes_and_values():
    model = small_model(latent_dim=2)
    images, labels = fake_data()
    shapes = {
        "reconstructions": (grids.reconstructions_grid(model, images, n=10, labels=labels), (2, 10)),
        "samples": (grids.samples_grid(model, n=64), (8, 8)),
        "samples-partial-row": (grids.samples_grid(model, n=10), (2, 8)),
        "interpolation": (grids.interpolation_grid(model, images, labels, rows=5, steps=10), (5, 10)),
        "traversal": (grids.traversal_grid(model, images[0], [0.5, 2.0], dims=8), (2, 11)),
        "manifold": (grids.manifold_grid(model, n=20), (20, 20)),
    }
    for name, (grid, (rows, columns)) in shapes.items():
        assert grid.shape == (3, rows * CELL + grids.PADDING, columns * CELL + grids.PADDING), name
        assert grid.dtype == torch.float32 and grid.min() >= 0 and grid.max() <= 1, name


def test_reconstructions_show_the_test_images_in_the_top_row():
    model = small_model()
    images, _ = fake_data(12)
    grid = grids.reconstructions_grid(model, images, n=3)
    for i in range(3):
        x = grids.PADDING + i * CELL
        assert torch.equal(grid[0, grids.PADDING : grids.PADDING + 28, x : x + 28], images[i, 0])


def test_manifold_needs_a_two_dimensional_latent():
    with pytest.raises(ValueError, match="latent_dim 2"):
        grids.manifold_grid(small_model(latent_dim=5))


def test_figures_are_deterministic():
    model = small_model()
    images, labels = fake_data()
    assert torch.equal(grids.samples_grid(model, seed=3), grids.samples_grid(model, seed=3))
    assert not torch.equal(grids.samples_grid(model, seed=3), grids.samples_grid(model, seed=4))
    first = grids.interpolation_grid(model, images, labels)
    assert torch.equal(first, grids.interpolation_grid(model, images, labels))


def test_pick_examples_takes_the_first_image_of_each_class_then_the_rest():
    labels = torch.tensor([3, 3, 1, 0, 1, 2, 0])
    assert grids.pick_examples(labels, 4, 7) == [3, 2, 5, 0]
    assert grids.pick_examples(labels, 6, 7) == [3, 2, 5, 0, 1, 4]
    assert grids.pick_examples(None, 4, 7) == [0, 1, 2, 3]
    assert grids.pick_examples(labels, 50, 7) == [3, 2, 5, 0, 1, 4, 6]


def test_interpolation_pairs_join_different_classes():
    labels = torch.tensor([5, 1, 1, 0, 5, 0, 2])
    pairs = grids.interpolation_pairs(labels, rows=4)
    assert all(labels[a] != labels[b] for a, b in pairs)
    assert pairs[:2] == [(3, 1), (6, 0)]  # classes (0, 1), then (2, 5)
    with pytest.raises(ValueError, match="two classes"):
        grids.interpolation_pairs(torch.zeros(5, dtype=torch.long), rows=1)


def test_traversal_rows_follow_kl_descending_with_ties_in_index_order():
    assert grids.top_kl_dims([0.1, 5.0, 2.0, 5.0, 0.0], 3) == [1, 3, 2]
    assert grids.top_kl_dims([1.0, 2.0], 8) == [1, 0]


def test_traversal_row_varies_only_the_chosen_dimension():
    model = small_model(latent_dim=3)
    image = fake_data(1)[0][0]
    values = torch.tensor([-1.0, 0.0, 1.0])
    grid = grids.traversal_grid(model, image, [0.0, 3.0, 1.0], dims=1, values=values)
    with torch.inference_mode():
        mu = model.encode(image.unsqueeze(0))[0]
        z = mu.repeat(3, 1)
        z[:, 1] = values  # the dimension with the most KL
        expected = model.likelihood.mean(model.decode(z))
    for column in range(3):
        x = grids.PADDING + column * CELL
        cell = grid[0, grids.PADDING : grids.PADDING + 28, x : x + 28]
        torch.testing.assert_close(cell, expected[column, 0])


@pytest.mark.parametrize("dim", [1, 7])  # 2 is drawn by the latent-2 run above
def test_latent_scatter_for_any_latent_size(tmp_path, dim):
    mu = torch.randn(6000, dim, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "scatter.png"
    plots.save_latent_scatter(mu, torch.arange(6000) % 10, path)
    assert_sane_png(path)


def test_curves_with_one_epoch_and_no_validation(tmp_path):
    path = tmp_path / "curves.png"
    plots.save_curves(fake_history(epochs=1, val=False), path)
    assert_sane_png(path)


def test_kl_per_dim_checks_the_mask_length(tmp_path):
    with pytest.raises(ValueError, match="active-unit flags"):
        plots.save_kl_per_dim([1.0, 2.0], tmp_path / "kl.png", active=[True])


@pytest.mark.parametrize(("n", "per_row", "channels"), [(1, 8, 1), (7, 3, 1), (12, 4, 3), (5, 10, 1)])
def test_tile_and_its_png_match_torchvision(tmp_path, n, per_row, channels):
    """The grid layout and the PNG rounding are torchvision's make_grid and save_image (the reference),
    done without importing torchvision."""
    from torchvision.utils import make_grid, save_image

    images = torch.rand(n, channels, 6, 5, generator=torch.Generator().manual_seed(n))
    ours = grids.tile(images, per_row)
    if n > 1:  # make_grid returns a lone image without its padding
        assert torch.equal(ours, make_grid(images, nrow=per_row, padding=grids.PADDING, pad_value=grids.PAD_VALUE))
    with open(tmp_path / "ours.png", "wb") as handle:
        grids.save_grid_png(ours, handle)
    save_image(ours, tmp_path / "reference.png")
    assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "reference.png").read_bytes()
