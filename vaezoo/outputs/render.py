"""Matplotlib helpers shared by every PNG: atomic saving, titles, image-grid axes and their ticks.

Matplotlib is used through `matplotlib.figure.Figure` objects only, never pyplot's global state,
so figures can be drawn from several threads or processes at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from vaezoo.core import io
from vaezoo.outputs.grids import PADDING

#: figures are drawn at the size they are printed (A4's text width is 7 in), so this is also print resolution
DPI = 200
#: the width of a report's text column (A4, 1.6 cm margins) and of half of it, in inches
TEXT_WIDTH_IN = 7.0
HALF_WIDTH_IN = 3.35
#: no text in a figure is smaller than this, printed at the size it is drawn
MIN_FONT_PT = 7.0
#: the type sizes of every figure: drawn at print size, they print at these sizes
PRINT_RC = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.title_fontsize": 7.5,
    "figure.titlesize": 9,
}
#: PNG text chunks: the smallest font in the figure (points at its drawn size), and its resolution
FONT_KEY, DPI_KEY = "vaezoo:min-font-pt", "vaezoo:dpi"
F = TypeVar("F", bound=Callable[..., Any])


def for_print(draw: F) -> F:
    """Draw under PRINT_RC: a figure made at print size with these fonts prints them at these sizes."""

    @functools.wraps(draw)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(PRINT_RC):
            return draw(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def smallest_font(fig: Figure) -> float:
    """The smallest font size (points) of any visible text the figure draws (tick labels included)."""
    fig.draw_without_rendering()  # tick labels get their text only when drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes, default=PRINT_RC["font.size"]))


def save_png(fig: Figure, path: Path) -> None:
    """Write the PNG under a temporary name beside `path`, then rename: never a half-written figure.

    The PNG records its smallest font and its resolution, so a report can say how large its text
    prints at the width it places it (see printed_font)."""
    metadata = {FONT_KEY: f"{smallest_font(fig):g}", DPI_KEY: str(DPI)}
    # a tight box trims the slack that an aspect-locked image grid leaves around itself
    io.atomic_write(
        path,
        lambda handle: fig.savefig(
            handle, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05, metadata=metadata
        ),
    )


def png_print_info(path: Path) -> tuple[float, float] | None:
    """(width in inches as drawn, smallest font in points) of a PNG save_png wrote; None for another PNG."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", {})
        try:
            return image.width / float(text[DPI_KEY]), float(text[FONT_KEY])
        except (KeyError, ValueError, ZeroDivisionError):
            return None


def printed_font(path: Path, placed_width_in: float) -> float | None:
    """The smallest font of a figure as printed when placed `placed_width_in` wide; None if unknown."""
    info = png_print_info(path)
    return None if info is None else info[1] * placed_width_in / info[0]


def titled(target: Figure | Axes, title: str, subtitle: str | None = None) -> None:
    """A title with an optional subtitle line, over a whole figure or over one axes.

    Image grids title their axes: a figure title would sit at the top of the canvas, leaving the
    slack of the aspect-locked image between it and the grid.
    """
    text = title if subtitle is None else f"{title}\n{subtitle}"
    if isinstance(target, Figure):
        target.suptitle(text, fontsize=9)
    else:
        target.set_title(text, fontsize=9)


def image_figure(grid: torch.Tensor, width_in: float) -> tuple[Figure, Axes]:
    """A figure sized to the grid's aspect ratio (plus room for titles and labels) showing the grid."""
    height_in = width_in * grid.shape[1] / grid.shape[2] + 0.9
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
