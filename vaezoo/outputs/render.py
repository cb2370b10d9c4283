"""Matplotlib helpers shared by every PNG: atomic saving, titles, image-grid axes and their ticks.

Matplotlib is used through `matplotlib.figure.Figure` objects only, never pyplot's global state,
so figures can be drawn from several threads or processes at once.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vaezoo.core import io
from vaezoo.outputs.grids import PADDING

DPI = 120


def save_png(fig: Figure, path: Path) -> None:
    """Write the PNG under a temporary name beside `path`, then rename: never a half-written figure."""
    # a tight box trims the slack that an aspect-locked image grid leaves around itself
    io.atomic_write(
        path, lambda handle: fig.savefig(handle, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    )


def titled(target: Figure | Axes, title: str, subtitle: str | None = None) -> None:
    """A title with an optional subtitle line, over a whole figure or over one axes.

    Image grids title their axes: a figure title would sit at the top of the canvas, leaving the
    slack of the aspect-locked image between it and the grid.
    """
    text = title if subtitle is None else f"{title}\n{subtitle}"
    if isinstance(target, Figure):
        target.suptitle(text, fontsize=11)
    else:
        target.set_title(text, fontsize=11)


def image_figure(grid: torch.Tensor, width_in: float) -> tuple[Figure, Axes]:
    """A figure sized to the grid's aspect ratio (plus room for titles and labels) showing the grid."""
    height_in = width_in * grid.shape[1] / grid.shape[2] + 1.3
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(grid.permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    return fig, ax


def cell_side(grid: torch.Tensor, per_row: int) -> int:
    """The side of one cell of a grid made with `per_row` images to a row."""
    return (grid.shape[-1] - PADDING) // per_row - PADDING


def cell_centers(count: int, side: int) -> list[float]:
    """Pixel coordinates of the centres of `count` grid cells of `side` pixels, for tick positions."""
    return [PADDING + i * (side + PADDING) + (side - 1) / 2 for i in range(count)]


def sparse_ticks(count: int, most: int = 20) -> list[int]:
    """At most `most` evenly spread indices out of `count`, both ends included (all of them if few)."""
    return torch.linspace(0, count - 1, min(count, most)).round().long().unique().tolist()
