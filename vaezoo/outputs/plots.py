"""PNGs of one run's plots: test posterior means by class, training curves, and KL per latent dimension."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from vaezoo.evaluate.records import HistoryRow
from vaezoo.outputs import render

SCATTER_SEED = 0
SCATTER_MAX_POINTS = 5000


def _scatter_coordinates(mu: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[str], str]:
    """2-d coordinates of each mean, the two axis labels and a title note saying what was plotted."""
    dim = mu.shape[1]
    if dim == 1:
        # a strip plot: one jittered row per class, so classes do not hide each other
        noise = torch.rand(mu.shape[0], generator=torch.Generator().manual_seed(SCATTER_SEED)) - 0.5
        coords = torch.stack([mu[:, 0], labels.float() + 0.6 * noise], dim=1)
        return coords, ["z1 (posterior mean)", "class (jittered vertically)"], "1-d latent, one strip per class"
    if dim == 2:
        return mu, ["z1 (posterior mean)", "z2 (posterior mean)"], "2-d latent"
    centered = mu - mu.mean(dim=0)
    _, s, vh = torch.linalg.svd(centered, full_matrices=False)
    share = (s.square() / s.square().sum() * 100).tolist()
    axes = [f"PC{i + 1} of the means ({share[i]:.1f}% of variance)" for i in range(2)]
    return centered @ vh[:2].T, axes, f"PCA projection of the {dim}-d latent"


@render.for_print
def save_latent_scatter(mu: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Test-set posterior means coloured by class: as they are for 2 dims, PCA for more, a strip plot for 1."""
    mu, labels = mu.detach().float().cpu(), labels.cpu()
    coords, axis_labels, note = _scatter_coordinates(mu, labels)
    # a fixed random subset, drawn in random order so that no class is always painted on top
    keep = torch.randperm(mu.shape[0], generator=torch.Generator().manual_seed(SCATTER_SEED))[:SCATTER_MAX_POINTS]
    coords, shown = coords[keep].numpy(), labels[keep]
    cmap = matplotlib.colormaps["tab10"]
    fig = Figure(figsize=(render.HALF_WIDTH_IN, 2.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(coords[:, 0], coords[:, 1], c=cmap(shown.numpy() % 10), s=1.5, alpha=0.6, linewidths=0)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=cmap(c % 10), label=str(c)) for c in torch.unique(shown).tolist()
    ]
    ax.legend(handles=handles, title="class", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.grid(alpha=0.3)
    render.titled(fig, f"Posterior means of {len(keep)} test images", note)
    render.save_png(fig, path)


CURVE_PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("(a) loss", "nats / image", (("train_loss", "train: D + βR"), ("val_neg_elbo", "val.: -ELBO"))),
    ("(b) distortion D", "-log p(x|z), nats / image", (("train_recon", "train"), ("val_recon", "val."))),
    ("(c) rate R", "KL, nats / image", (("train_kl", "train"), ("val_kl", "val."))),
    ("(d) β and learning rate", "β", (("beta", "β"),)),
)
MARKERS_UP_TO = 30  # epochs; beyond, markers hide the line
LOG_EPOCHS_FROM = 100  # epochs; a long run's early change and late plateau both show on a log axis


def _plot_series(ax: Axes, history: list[HistoryRow], series: tuple[tuple[str, str], ...]) -> None:
    """One line per series, skipping epochs where it is missing; a note when nothing was recorded."""
    plotted = 0
    marker = line_marker(history)
    for key, label in series:
        points = [(row.epoch, getattr(row, key)) for row in history if getattr(row, key) is not None]
        if points:
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker=marker, markersize=3, label=label)
            plotted += 1
    if plotted:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")


def _beta_from_zero(ax: Axes, history: list[HistoryRow]) -> None:
    """Start the beta axis at 0: a constant beta otherwise gets a y axis of +-4% noise around it."""
    betas = [row.beta for row in history]
    ax.set_ylim(0, max(betas, default=1.0) * 1.1 or 1.0)


def line_marker(history: list[HistoryRow]) -> str | None:
    """Markers on a short run's curves only: beyond MARKERS_UP_TO epochs they hide the line."""
    return "o" if _last_epoch(history) <= MARKERS_UP_TO else None


def _last_epoch(history: list[HistoryRow]) -> int:
    return max((row.epoch for row in history), default=0)


def epoch_axis(ax: Axes, history: list[HistoryRow]) -> None:
    """Whole epochs on the x axis, half an epoch of room at each end (else one epoch gets 0.945..1.05);
    a logarithmic axis for a long run (from LOG_EPOCHS_FROM epochs)."""
    if _last_epoch(history) >= LOG_EPOCHS_FROM:
        ax.set_xscale("log")
        ax.set_xlabel("epoch (log scale)")
        ax.set_xlim(min(row.epoch for row in history) * 0.9, max(row.epoch for row in history) * 1.1)
        return
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if history:
        ax.set_xlim(min(row.epoch for row in history) - 0.5, max(row.epoch for row in history) + 0.5)


def _learning_rate(ax: Axes, history: list[HistoryRow]) -> None:
    """The learning rate on a second, logarithmic y axis of the beta panel, where it was recorded."""
    points = [(row.epoch, row.lr) for row in history if row.lr is not None]
    if not points:
        return
    twin = ax.twinx()
    epochs, rates = zip(*points)
    marker = line_marker(history)
    twin.plot(
        epochs,
        rates,
        color="tab:red",
        linestyle="--",
        drawstyle="steps-post",
        marker=marker,
        markersize=3,
        label="learning rate",
    )
    twin.set_yscale("log")
    twin.set_ylabel("learning rate (log scale)", color="tab:red")
    twin.tick_params(axis="y", colors="tab:red")
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right")


@render.for_print
def save_curves(history: list[HistoryRow], path: Path) -> None:
    """Per-epoch training and validation curves in four panels: loss, reconstruction, KL, beta."""
    fig = Figure(figsize=(render.TEXT_WIDTH_IN, 2.3), layout="constrained")
    for ax, (title, unit, series) in zip(fig.subplots(1, 4).flat, CURVE_PANELS):
        _plot_series(ax, history, series)
        epoch_axis(ax, history)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    _beta_from_zero(fig.axes[3], history)
    _learning_rate(fig.axes[3], history)
    subtitle = "train: mean over the epoch's batches; validation: after each epoch, at β = 1"
    render.titled(fig, f"Training curves ({len(history)} epoch{'' if len(history) == 1 else 's'})", subtitle)
    render.save_png(fig, path)


def _mark_inactive(ax: Axes, bars: Any, dims: np.ndarray, flags: list[bool]) -> None:
    """Grey dashed bars and an x on the axis for inactive dims: their KL is ~0, so a bar alone is invisible."""
    for bar, is_active in zip(bars, flags):
        if not is_active:
            bar.set(facecolor="0.85", edgecolor="0.4", linestyle="--")
    inactive = dims[~np.array(flags)]
    ax.plot(inactive, np.zeros(len(inactive)), "x", color="0.4", clip_on=False, zorder=3)
    ax.legend(
        handles=[
            Patch(facecolor="C0", edgecolor="C0", label=f"active ({sum(flags)})"),
            (
                Patch(facecolor="0.85", edgecolor="0.4", linestyle="--"),
                Line2D([], [], marker="x", linestyle="", color="0.4"),
            ),
        ],
        labels=[f"active ({sum(flags)})", f"inactive ({len(flags) - sum(flags)})"],
    )


@render.for_print
def save_kl_per_dim(kl_per_dim: Sequence[float], path: Path, active: Sequence[bool] | None = None) -> None:
    """Bar chart of the KL carried by each latent dimension, inactive ones (if flagged) grey and dashed."""
    if active is not None and len(active) != len(kl_per_dim):
        raise ValueError(f"{len(active)} active-unit flags for {len(kl_per_dim)} latent dimensions")
    dims = np.arange(1, len(kl_per_dim) + 1)
    fig = Figure(figsize=(render.TEXT_WIDTH_IN, 2.6), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(dims, kl_per_dim, color="C0", edgecolor="C0")
    if active is not None:
        _mark_inactive(ax, bars, dims, [bool(a) for a in active])
    if len(dims) <= 32:
        ax.set_xticks(dims)  # every dimension named, to be found in the traversal's row labels
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.4, len(dims) + 0.6)
    ax.set_xlabel("latent dimension d (z1 .. zD)")
    ax.set_ylabel("KL(q(z_d|x) || p(z_d)), nats / image")
    ax.grid(axis="y", alpha=0.3)
    render.titled(fig, f"KL per latent dimension (total {sum(kl_per_dim):.1f} nats / image)")
    render.save_png(fig, path)
