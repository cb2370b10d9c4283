"""A sweep's comparison figures, rebuilt from its runs' saved files without any model: one grid per
kind of figure with a strip, every run's training curves on shared axes, and the rate-distortion plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.image
from matplotlib.figure import Figure

from vaezoo.evaluate.records import HistoryRow
from vaezoo.outputs import render
from vaezoo.outputs.escape import matplotlib as mpl
from vaezoo.outputs.figures import FIGURES
from vaezoo.outputs.plots import epoch_axis, line_marker


@render.for_print
def save_comparison_grid(kind: str, runs: Sequence[tuple[str, Path]], path: Path) -> None:
    """One labelled row per run: each run's figures/strips/<kind>.png, on a shared scale."""
    figure = FIGURES.get(kind)
    found = [(name, run / "figures" / "strips" / figure.file_name) for name, run in runs]
    found = [(name, png) for name, png in found if png.exists()]
    strips = [matplotlib.image.imread(png) for _, png in found]
    aspect = max((s.shape[0] / s.shape[1] for s in strips), default=0.2)
    width = render.TEXT_WIDTH_IN - 1.2  # room for the run names at the left
    fig = Figure(figsize=(render.TEXT_WIDTH_IN, 0.7 + width * aspect * max(1, len(found))), layout="constrained")
    axes = fig.subplots(max(1, len(found)), 1, squeeze=False)[:, 0]
    for ax, (name, _), strip in zip(axes, found, strips):
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(mpl(name), rotation=0, ha="right", va="center")
    if not found:
        axes[0].text(0.5, 0.5, f"no run has a {kind} strip", ha="center", va="center")
        axes[0].set_axis_off()
    render.titled(fig, f"{kind.capitalize()}, one row per run", figure.strip_caption)
    render.save_png(fig, path)


@render.for_print
def save_curves_comparison(histories: Sequence[tuple[str, list[HistoryRow]]], path: Path, half: bool = False) -> None:
    """Every run's curves on shared axes: validation -ELBO, train reconstruction, train KL, beta; in a
    row across the page, or (`half`) two by two in half its width, the legend in the beta panel."""
    panels = (
        ("val_neg_elbo", "(a) validation -ELBO"),
        ("train_recon", "(b) distortion D (train)"),
        ("train_kl", "(c) rate R (train)"),
        ("beta", "(d) β"),
    )
    size = (render.HALF_WIDTH_IN, 3.2) if half else (render.TEXT_WIDTH_IN, 2.4)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(2, 2).flat if half else fig.subplots(1, 4).flat
    every_row = [row for _, history in histories for row in history]
    marker = line_marker(every_row)
    for ax, (key, title) in zip(axes, panels):
        for index, (name, history) in enumerate(histories):
            points = [(row.epoch, getattr(row, key)) for row in history if getattr(row, key) is not None]
            if points:
                ax.plot(*zip(*points), marker=marker, markersize=2, color=f"C{index % 10}", label=mpl(name))
        ax.set_title(title)
        epoch_axis(ax, every_row)
        ax.set_ylabel("β" if key == "beta" else "nats / image")
        ax.grid(alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if handles and half:
        fig.axes[3].legend(handles, labels, loc="center left", frameon=False)
    elif handles:
        fig.legend(handles, labels, loc="outside right upper")
    render.titled(fig, "Training curves of every run")
    render.save_png(fig, path)


@render.for_print
def save_rate_distortion(points: Sequence[tuple[str, float, float]], path: Path) -> None:
    """Rate (test KL) against distortion (test reconstruction NLL), one point per run labelled with its
    name and -ELBO = R + D, and the iso-ELBO line R + D = const through each point (dashed)."""
    fig = Figure(figsize=(render.HALF_WIDTH_IN, 3.0), layout="constrained")
    ax = fig.add_subplot()
    for index, (name, rate, distortion) in enumerate(points):
        ax.scatter(rate, distortion, color=f"C{index % 10}", s=30, zorder=3)
        label = f"{mpl(name)}: -ELBO {rate + distortion:.1f}"
        ax.annotate(label, (rate, distortion), textcoords="offset points", xytext=(4, 3))
    _iso_elbo_lines(ax, [rate + distortion for _, rate, distortion in points])
    ax.set_xlabel("rate R = test KL, nats / image")
    ax.set_ylabel("distortion D = -log p(x|z), nats")
    ax.grid(alpha=0.3)
    render.titled(ax, "Rate-distortion plane", "dashed: R + D = -ELBO through each run")
    render.save_png(fig, path)


def _iso_elbo_lines(ax: Any, totals: Sequence[float]) -> None:
    """The line D = c - R for each total c, across the axes as the points (with a margin) set them."""
    if not totals:
        return
    ax.margins(0.12)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for total in sorted(set(totals)):
        ax.plot([x0, x1], [total - x0, total - x1], linestyle="--", linewidth=0.8, color="0.6", zorder=1)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
