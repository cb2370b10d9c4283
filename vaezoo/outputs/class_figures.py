"""Samples of each class from a conditional model (`model.classes`): a row per class, each row the
same prior draws z decoded with that row's label, so that a column shows one z across the classes
(the style the label leaves to z) and a row shows what the label alone fixes."""

from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.model.vae import VAE
from vaezoo.outputs import render
from vaezoo.outputs.grids import SAMPLES_SEED, tile

PER_CLASS = 10  # draws of z, one column each


def class_labels(classes: int, per_class: int) -> torch.Tensor:
    """The label of each cell, row by row: per_class 0s, then per_class 1s, ... (classes * per_class,)."""
    return torch.arange(classes).repeat_interleave(per_class)


@torch.inference_mode()
def class_samples(model: VAE, per_class: int = PER_CLASS, seed: int = SAMPLES_SEED) -> torch.Tensor:
    """The likelihood's mean for per_class prior draws z decoded with every label, (classes * per_class,
    C, H, W), class by class; the same z in every row (drawn on the CPU, so every device agrees)."""
    if not model.conditional:
        raise ValueError("samples of each class need a conditional model (model.classes > 0)")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        z = model.latent.sample(per_class, torch.Generator().manual_seed(seed)).to(device)
        z = z.repeat(model.classes, 1)
        y = class_labels(model.classes, per_class).to(device)
        return model.likelihood.mean(model.decode_latent(z, y))
    finally:
        model.train(was_training)


def class_samples_grid(model: VAE, per_class: int = PER_CLASS, seed: int = SAMPLES_SEED) -> torch.Tensor:
    """`class_samples` as a (3, H, W) grid in [0, 1], one row per class."""
    return tile(class_samples(model, per_class, seed).float().cpu(), per_class).clamp(0.0, 1.0)


def save_class_samples(model: VAE, path: Path, per_class: int = PER_CLASS, seed: int = SAMPLES_SEED) -> None:
    """PNG of `class_samples_grid`, rows named by their class."""
    grid = class_samples_grid(model, per_class, seed)
    fig, ax = render.image_figure(grid, width_in=6.5)
    side = render.cell_side(grid, per_class)
    ax.set_yticks(render.cell_centers(model.classes, side), [str(c) for c in range(model.classes)])
    ax.set_xticks(render.cell_centers(per_class, side), [str(k + 1) for k in range(per_class)])
    ax.set_ylabel("label y given to the decoder")
    ax.set_xlabel(f"draw z ~ p(z) (the same {per_class} draws in every row, seed {seed})")
    render.titled(ax, "Samples of each class", "likelihood mean of decode(z, y): a conditional VAE's p(x | y, z)")
    render.save_png(fig, path)
