"""The figure registry: every kind of per-run figure as one entry, and the writers that go through it.

A kind of figure is one `FigureKind` in FIGURES: its file name, its caption in the run's report,
which runs it applies to, how to draw it, and (for image figures) the strip a sweep stacks into
a comparison grid. `write_run_figures`, the run report and the sweep's comparison grids all read
FIGURES, so a new kind of figure is one more `register_figure` call here and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaezoo.core import io
from vaezoo.core.registry import Registry
from vaezoo.evaluate.records import HistoryRow
from vaezoo.model.vae import VAE
from vaezoo.outputs.class_figures import save_class_samples
from vaezoo.outputs.grids import (
    interpolation_grid,
    reconstructions_grid,
    samples_grid,
    save_grid_png,
    traversal_grid,
)
from vaezoo.outputs.image_figures import (
    save_interpolation,
    save_manifold,
    save_reconstructions,
    save_samples,
    save_traversal,
)
from vaezoo.outputs.plots import save_curves, save_kl_per_dim, save_latent_scatter


@dataclass(frozen=True)
class RunFigureInputs:
    """What a trained run's figures are drawn from; the strips need only the first four."""

    model: VAE
    test_images: torch.Tensor
    test_labels: torch.Tensor
    kl_per_dim: Sequence[float]
    history: list[HistoryRow] = field(default_factory=list)
    active_units_mask: Sequence[bool] | None = None
    mu_test: torch.Tensor | None = None


def _any_model(model: VAE) -> bool:
    return True


def real_code(model: VAE) -> bool:
    """True where the code is real-valued: paths, quantile sweeps and scatters of its values mean
    nothing for one-hot blocks of categorical variables (`vaezoo.parts.gumbel`) or for a codebook's
    vectors (`vaezoo.parts.vq`), between and around which the decoder was never trained."""
    return model.posterior.space == "real"


def _unlabelled_paths(model: VAE) -> bool:
    """True where paths and sweeps through the code may be decoded without a label: a real-valued code of
    an unconditional model. A conditional model would decode them with the all-zero "no label" it was
    never trained on, and a path between digits of two classes has no one label to decode with."""
    return real_code(model) and not model.conditional


@dataclass(frozen=True)
class FigureKind:
    """One kind of per-run figure, written as figures/<name>.png."""

    name: str
    caption: str  # under the figure in the run's report
    draw: Callable[[RunFigureInputs, Path], None]
    applies: Callable[[VAE], bool] = _any_model  # given the run's model
    # two rows of ten cells, the same size for every kind, so a sweep can stack one row per run
    strip: Callable[[RunFigureInputs], torch.Tensor] | None = None
    strip_caption: str | None = None  # under the sweep's comparison grid

    @property
    def file_name(self) -> str:
        return f"{self.name}.png"


FIGURES: Registry[FigureKind] = Registry("figure")


def register_figure(kind: FigureKind) -> FigureKind:
    """Add a kind of figure under its name; registration order is the order of the report's figures."""
    return FIGURES.register(kind.name)(kind)


register_figure(
    FigureKind(
        "reconstructions",
        caption="Test digits (top row) above their reconstructions, the likelihood's mean at z = mu.",
        draw=lambda run, path: save_reconstructions(run.model, run.test_images, path, labels=run.test_labels),
        strip=lambda run: reconstructions_grid(run.model, run.test_images, n=10, labels=run.test_labels),
        strip_caption="top: test digits 0-9; bottom: their reconstructions",
    )
)
register_figure(
    FigureKind(
        "samples",
        caption="Decoded draws from the model's prior p(z): the likelihood's mean, not a binary sample.",
        draw=lambda run, path: save_samples(run.model, path),
        strip=lambda run: samples_grid(run.model, n=20, per_row=10),
        strip_caption="20 decoded draws from the prior (the same z for every run of the same latent size)",
    )
)
register_figure(
    FigureKind(
        "class_samples",
        caption="Samples of each class from the conditional model: row y decodes the same prior draws "
        "z with the label y (the likelihood's mean).",
        draw=lambda run, path: save_class_samples(run.model, path),
        applies=lambda model: model.conditional,
    )
)
register_figure(
    FigureKind(
        "interpolation",
        caption="Linear paths between the latent means of pairs of test digits of different classes.",
        draw=lambda run, path: save_interpolation(run.model, run.test_images, run.test_labels, path),
        applies=_unlabelled_paths,
        strip=lambda run: interpolation_grid(run.model, run.test_images, run.test_labels, rows=2, steps=10),
        strip_caption="two latent paths between test digits (0 to 1, 2 to 3)",
    )
)
register_figure(
    FigureKind(
        "traversal",
        caption="One latent dimension at a time (rows: the dimensions with the most KL) swept from -3 to 3; "
        "the others held at a test digit's mean.",
        draw=lambda run, path: save_traversal(run.model, run.test_images[0], run.kl_per_dim, path),
        applies=_unlabelled_paths,
        strip=lambda run: traversal_grid(
            run.model, run.test_images[0], run.kl_per_dim, dims=2, values=torch.linspace(-3, 3, 10)
        ),
        strip_caption="the two dimensions with the most KL, each from -3 to 3",
    )
)
register_figure(
    FigureKind(
        "latent_scatter",
        caption="Posterior means of the test digits, coloured by label.",
        draw=lambda run, path: save_latent_scatter(run.mu_test, run.test_labels, path),
        applies=real_code,
    )
)
register_figure(
    FigureKind(
        "manifold",
        caption="The decoder over a grid of Gaussian quantiles of the 2-D latent space.",
        draw=lambda run, path: save_manifold(run.model, path),
        applies=lambda model: model.latent_dim == 2 and _unlabelled_paths(model),
    )
)
register_figure(
    FigureKind(
        "curves",
        caption="Training and validation loss, reconstruction and KL per epoch (nats per image), and beta.",
        draw=lambda run, path: save_curves(run.history, path),
    )
)
register_figure(
    FigureKind(
        "kl_per_dim",
        caption="Test KL per latent dimension (nats per image): the dimensions that carry information.",
        draw=lambda run, path: save_kl_per_dim(run.kl_per_dim, path, run.active_units_mask),
    )
)


def applicable_figures(model: VAE) -> list[str]:
    """The kinds in FIGURES that a run of this model gets (the manifold needs exactly 2 real dims)."""
    return [name for name, kind in FIGURES.items() if kind.applies(model)]


def comparison_kinds() -> list[str]:
    """The kinds in FIGURES that have a comparison strip, in registration order."""
    return [name for name, kind in FIGURES.items() if kind.strip is not None]


def write_run_figures(
    model: VAE,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    history: list[HistoryRow],
    kl_per_dim: Sequence[float],
    active_units_mask: Sequence[bool] | None,
    mu_test: torch.Tensor,
    out_dir: Path,
    advance: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write every figure that applies to the run as out_dir/<kind>.png, and the comparison strips
    under out_dir/strips/; returns the figures' paths. `advance(1)` is told of each one written."""
    io.ensure_folder(out_dir)  # a received run's figures/ may be a link out of it
    run = RunFigureInputs(model, test_images, test_labels, kl_per_dim, history, active_units_mask, mu_test.cpu())
    paths = []
    for name in applicable_figures(model):
        kind = FIGURES.get(name)
        paths.append(out_dir / kind.file_name)
        kind.draw(run, paths[-1])
        if advance is not None:
            advance(1)
    write_strips(model, test_images, test_labels, kl_per_dim, out_dir / "strips")
    if advance is not None:
        advance(1)
    return paths


def comparison_strips(
    model: VAE, test_images: torch.Tensor, test_labels: torch.Tensor, kl_per_dim: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Two-row, ten-column versions of the image figures, all the same size, for sweep comparisons."""
    run = RunFigureInputs(model, test_images, test_labels, kl_per_dim)
    return {name: kind.strip(run) for name, kind in FIGURES.items() if kind.strip is not None and kind.applies(model)}


def write_strips(
    model: VAE, test_images: torch.Tensor, test_labels: torch.Tensor, kl_per_dim: Sequence[float], out_dir: Path
) -> None:
    """Each comparison strip as a bare PNG (no axes), read back by a sweep's comparison grids."""
    io.ensure_folder(out_dir)
    for name, grid in comparison_strips(model, test_images, test_labels, kl_per_dim).items():
        io.atomic_write(out_dir / FIGURES.get(name).file_name, lambda handle, grid=grid: save_grid_png(grid, handle))
