"""PNGs of the image grids: each grid of `grids` with a title and its rows and columns named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vaezoo.model.vae import VAE
from vaezoo.outputs import render
from vaezoo.outputs.grids import (
    SAMPLES_SEED,
    TRAVERSAL_VALUES,
    interpolation_grid,
    interpolation_pairs,
    manifold_grid,
    manifold_values,
    pick_examples,
    reconstructions_grid,
    samples_grid,
    top_kl_dims,
    traversal_grid,
)


@render.for_print
def save_reconstructions(
    model: VAE, images: torch.Tensor, path: Path, n: int = 10, labels: torch.Tensor | None = None
) -> None:
    """PNG of `reconstructions_grid`: test images above, their reconstructions below."""
    grid = reconstructions_grid(model, images, n, labels)
    chosen = pick_examples(labels, n, images.shape[0])
    fig, ax = render.image_figure(grid, width_in=render.HALF_WIDTH_IN)
    side = render.cell_side(grid, len(chosen))
    ax.set_yticks(render.cell_centers(2, side), ["test image", "reconstruction"])
    if labels is None:
        ax.set_xticks([])
        ax.set_xlabel(f"the first {len(chosen)} test images")
    else:
        # the class of each column is what a reader checks the reconstruction against
        ax.set_xticks(render.cell_centers(len(chosen), side), [str(int(labels[i])) for i in chosen])
        ax.set_xlabel("class (the first test image of each)")
    render.titled(ax, "Reconstructions", "mean of decode(mu), mu the posterior mean")
    render.save_png(fig, path)


@render.for_print
def save_samples(model: VAE, path: Path, n: int = 64, seed: int = SAMPLES_SEED) -> None:
    """PNG of `samples_grid`: mean images of prior draws."""
    fig, ax = render.image_figure(samples_grid(model, n, seed), width_in=2.2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{n} independent draws, 8 per row (seed {seed})")
    render.titled(ax, "Samples from the prior", "mean of decode(z), z ~ p(z)")
    render.save_png(fig, path)


@render.for_print
def save_interpolation(
    model: VAE, images: torch.Tensor, labels: torch.Tensor, path: Path, rows: int = 5, steps: int = 10
) -> None:
    """PNG of `interpolation_grid`, rows named by the classes they join, columns by t."""
    grid = interpolation_grid(model, images, labels, rows, steps)
    fig, ax = render.image_figure(grid, width_in=render.HALF_WIDTH_IN)
    side = render.cell_side(grid, steps)
    t = torch.linspace(0.0, 1.0, steps).tolist()
    ax.set_xticks(render.cell_centers(steps, side), [f"{v:.2f}" for v in t])
    pairs = interpolation_pairs(labels, rows)
    ax.set_yticks(render.cell_centers(rows, side), [f"{int(labels[a])} → {int(labels[b])}" for a, b in pairs])
    ax.set_xlabel("t, in z = (1 - t) mu_a + t mu_b")
    ax.set_ylabel("classes of test images a → b")
    subtitle = "mean of decode(z) between two posterior means"
    render.titled(ax, "Latent interpolation", subtitle)
    render.save_png(fig, path)


@render.for_print
def save_traversal(
    model: VAE,
    image: torch.Tensor,
    kl_per_dim: Sequence[float],
    path: Path,
    dims: int = 8,
    values: torch.Tensor = TRAVERSAL_VALUES,
) -> None:
    """PNG of `traversal_grid`: rows named by dimension and its KL, columns by the value set."""
    grid = traversal_grid(model, image, kl_per_dim, dims, values)
    chosen = top_kl_dims(kl_per_dim, min(dims, model.latent_dim))
    fig, ax = render.image_figure(grid, width_in=render.HALF_WIDTH_IN)
    side = render.cell_side(grid, len(values))
    ax.set_yticks(render.cell_centers(len(chosen), side), [f"z{d + 1} ({kl_per_dim[d]:.1f})" for d in chosen])
    # rounded, and + 0.0 turns -0.0 into 0: linspace's middle value is -1.2e-07, not 0
    ax.set_xticks(render.cell_centers(len(values), side), [f"{round(v, 2) + 0.0:g}" for v in values.tolist()])
    ax.set_xlabel("z_d (prior std from its mean)")
    ax.set_ylabel("latent dim (KL nats)")
    subtitle = f"the {len(chosen)} dims with most KL; others at a test mean"
    render.titled(ax, "Latent traversals", subtitle)
    render.save_png(fig, path)


@render.for_print
def save_manifold(model: VAE, path: Path, n: int = 20) -> None:
    """PNG of `manifold_grid`, with the z1 and z2 values of the cells on the axes."""
    grid = manifold_grid(model, n)
    fig, ax = render.image_figure(grid, width_in=2.6)
    centers = render.cell_centers(n, render.cell_side(grid, n))
    q = manifold_values(n).tolist()
    shown = render.sparse_ticks(n, most=6)  # printed at half the page's width: six labels do not touch
    ax.set_xticks([centers[i] for i in shown], [f"{q[i]:.2f}" for i in shown])
    ax.set_yticks([centers[i] for i in shown], [f"{q[n - 1 - i]:.2f}" for i in shown])
    ax.set_xlabel("z1 = mean + q std of its prior marginal")
    ax.set_ylabel("z2 = mean + q std")
    subtitle = f"decode(z) on a {n} x {n} grid of N(0, 1) quantiles"
    render.titled(ax, "Decoded latent manifold", subtitle)
    render.save_png(fig, path)
