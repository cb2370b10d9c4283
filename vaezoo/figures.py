"""Every per-run figure: image grids as tensors, and PNGs rendered with matplotlib.

Two layers:

- grid builders (`reconstructions_grid`, `samples_grid`, ...) return a float tensor (3, H, W) in
  [0, 1] made with torchvision's `make_grid`, so that a comparison report can stack one row per run;
- PNG writers (`save_*`) render a grid or a plot with a title, axis labels and units.

Matplotlib is used through `matplotlib.figure.Figure` objects only, never pyplot's global state,
so figures can be drawn from several threads or processes at once. Every random draw uses a
torch.Generator with a fixed seed, and all model work runs under `torch.inference_mode()` with the
model in eval mode, so the same checkpoint always gives the same pictures. Latent dimensions are
named z1..zD (1-based, as in the math): `kl_per_dim[0]` is z1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.image
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid, save_image

from vaezoo import io
from vaezoo.model import VAE

FIGURES: tuple[str, ...] = (
    "reconstructions",
    "samples",
    "interpolation",
    "traversal",
    "latent_scatter",
    "manifold",
    "curves",
    "kl_per_dim",
)

PADDING = 2  # pixels between grid cells
PAD_VALUE = 0.5  # grey separators: MNIST digits are white on black, so neither colour would read as a border
DPI = 120
SAMPLES_SEED = 0
SCATTER_SEED = 0
SCATTER_MAX_POINTS = 5000
ENCODE_BATCH = 1000
TRAVERSAL_VALUES = torch.linspace(-3, 3, 11)


# ----------------------------------------------------------------------------------------------
# helpers shared by the grid builders


@contextmanager
def _evaluating(model: VAE) -> Iterator[None]:
    """Eval mode and inference mode for the block, then the model's own training flag back."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def _grid(images: torch.Tensor, per_row: int) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1] of (N, C, h, w) images, `per_row` to a row."""
    grid = make_grid(images.detach().float().cpu(), nrow=per_row, padding=PADDING, pad_value=PAD_VALUE)
    return grid.clamp(0.0, 1.0)


def _decode_mean(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """The likelihood's mean image for each z: what a reader expects to see for 'decode(z)'."""
    return model.likelihood.mean(model.decode(z.to(_device(model))))


def _encode_mean(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """The posterior means of a few images (no batching: callers pass tens of images)."""
    mu, _ = model.encode(images.to(_device(model)))
    return mu


# ----------------------------------------------------------------------------------------------
# choosing what to show


def pick_examples(labels: torch.Tensor | None, n: int, total: int) -> list[int]:
    """Indices of n images out of `total`: the first of each class in class order, then the first others.

    With labels, every class appears (when n allows), so a glance shows each digit's reconstruction.
    """
    n = min(n, total)
    if labels is None:
        return list(range(n))
    labels = labels.cpu()
    chosen = [int((labels == c).nonzero()[0]) for c in torch.unique(labels).tolist()][:n]
    taken = set(chosen)
    for i in range(total):
        if len(chosen) == n:
            break
        if i not in taken:
            chosen.append(i)
    return chosen


def interpolation_pairs(labels: torch.Tensor, rows: int) -> list[tuple[int, int]]:
    """`rows` pairs of image indices whose classes differ: (0, 1), (2, 3), ... then later examples.

    Row r joins classes 2r and 2r+1 (mod the number of classes), using the (r // pairs)-th image of
    each class, so five rows on MNIST show ten different digits.
    """
    labels = labels.cpu()
    classes = torch.unique(labels).tolist()
    if len(classes) < 2:
        raise ValueError("interpolation needs test images of at least two classes")
    members = {c: (labels == c).nonzero().flatten().tolist() for c in classes}
    per_round = max(1, len(classes) // 2)
    pairs = []
    for r in range(rows):
        a, b = classes[(2 * r) % len(classes)], classes[(2 * r + 1) % len(classes)]
        k = r // per_round
        pairs.append((members[a][min(k, len(members[a]) - 1)], members[b][min(k, len(members[b]) - 1)]))
    return pairs


def top_kl_dims(kl_per_dim: Sequence[float], k: int) -> list[int]:
    """The (0-based) indices of the k dimensions with the most KL, most first; ties keep index order."""
    order = sorted(range(len(kl_per_dim)), key=lambda d: (-kl_per_dim[d], d))
    return order[:k]


def manifold_values(n: int) -> torch.Tensor:
    """n standard-normal quantiles at probabilities 0.05..0.95: equal prior mass between neighbours."""
    return torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))


# ----------------------------------------------------------------------------------------------
# grid builders: (3, H, W) tensors in [0, 1]


def reconstructions_grid(
    model: VAE, images: torch.Tensor, n: int = 10, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """n test images in the top row and their reconstructions (mean of decode(mu)) in the row below."""
    chosen = images[pick_examples(labels, n, images.shape[0])]
    with _evaluating(model):
        recon = _decode_mean(model, _encode_mean(model, chosen))
    return _grid(torch.cat([chosen.to(recon.device), recon]), per_row=chosen.shape[0])


def samples_grid(model: VAE, n: int = 64, seed: int = SAMPLES_SEED, per_row: int = 8) -> torch.Tensor:
    """Mean images of n draws z ~ p(z) from the model's prior, 8 to a row."""
    # drawn on the CPU so that every device shows the same samples for the same seed
    z = model.prior.sample(n, torch.Generator().manual_seed(seed))
    with _evaluating(model):
        return _grid(_decode_mean(model, z), per_row=per_row)


def interpolation_grid(
    model: VAE, images: torch.Tensor, labels: torch.Tensor, rows: int = 5, steps: int = 10
) -> torch.Tensor:
    """One row per pair of test digits of different classes: decodes along the line between their means."""
    pairs = interpolation_pairs(labels, rows)
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    with _evaluating(model):
        mu = _encode_mean(model, images[[i for pair in pairs for i in pair]]).cpu()
        starts, ends = mu[0::2], mu[1::2]
        z = torch.cat([(1 - t) * a + t * b for a, b in zip(starts, ends)])
        return _grid(_decode_mean(model, z), per_row=steps)


def traversal_grid(
    model: VAE,
    image: torch.Tensor,
    kl_per_dim: Sequence[float],
    dims: int = 8,
    values: torch.Tensor = TRAVERSAL_VALUES,
) -> torch.Tensor:
    """Rows: the `dims` latent dims with the most KL (most first); columns: that dim set to each value.

    The other dimensions stay at the posterior mean of `image`; the values are in standard deviations
    of the dimension's prior marginal, from its mean (for N(0, I), z_d itself).
    """
    chosen = top_kl_dims(kl_per_dim, min(dims, model.latent_dim))
    with _evaluating(model):
        mu = _encode_mean(model, image.reshape(1, *image.shape[-3:])).cpu()
        z = mu.repeat(len(chosen) * len(values), 1)
        mean, std = (t.cpu() for t in model.prior.marginal_moments())
        for row, d in enumerate(chosen):
            z[row * len(values) : (row + 1) * len(values), d] = mean[d] + values * std[d]
        return _grid(_decode_mean(model, z), per_row=len(values))


def manifold_grid(model: VAE, n: int = 20) -> torch.Tensor:
    """For a 2-d latent: decodes an n x n grid of Gaussian quantiles, scaled by each dimension's prior
    marginal (mean + q * std; N(0, I)'s own quantiles for the standard prior); z1 grows rightward, z2 upward."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold figure needs latent_dim 2, not {model.latent_dim}")
    q = manifold_values(n)
    # row-major order: top row is the highest z2, as on a plot's y axis
    z2, z1 = torch.meshgrid(q.flip(0), q, indexing="ij")
    mean, std = (t.cpu() for t in model.prior.marginal_moments())
    z = mean + torch.stack([z1, z2], dim=-1).reshape(-1, 2) * std
    with _evaluating(model):
        return _grid(_decode_mean(model, z), per_row=n)


# ----------------------------------------------------------------------------------------------
# rendering


def _save(fig: Figure, path: Path) -> None:
    """Write the PNG under a temporary name beside `path`, then rename: never a half-written figure."""
    # a tight box trims the slack that an aspect-locked image grid leaves around itself
    io.atomic_write(
        path, lambda handle: fig.savefig(handle, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    )


def _titled(target: Figure | Axes, title: str, subtitle: str | None = None) -> None:
    """A title with an optional subtitle line, over a whole figure or over one axes.

    Image grids title their axes: a figure title would sit at the top of the canvas, leaving the
    slack of the aspect-locked image between it and the grid.
    """
    text = title if subtitle is None else f"{title}\n{subtitle}"
    if isinstance(target, Figure):
        target.suptitle(text, fontsize=11)
    else:
        target.set_title(text, fontsize=11)


def _image_figure(grid: torch.Tensor, width_in: float) -> tuple[Figure, Axes]:
    """A figure sized to the grid's aspect ratio (plus room for titles and labels) showing the grid."""
    height_in = width_in * grid.shape[1] / grid.shape[2] + 1.3
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(grid.permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    return fig, ax


def _cell_side(grid: torch.Tensor, per_row: int) -> int:
    """The side of one cell of a grid made with `per_row` images to a row."""
    return (grid.shape[-1] - PADDING) // per_row - PADDING


def _cell_centers(count: int, side: int) -> list[float]:
    """Pixel coordinates of the centres of `count` grid cells of `side` pixels, for tick positions."""
    return [PADDING + i * (side + PADDING) + (side - 1) / 2 for i in range(count)]


def _sparse_ticks(count: int, most: int = 20) -> list[int]:
    """At most `most` evenly spread indices out of `count`, both ends included (all of them if few)."""
    return torch.linspace(0, count - 1, min(count, most)).round().long().unique().tolist()


def save_reconstructions(
    model: VAE, images: torch.Tensor, path: Path, n: int = 10, labels: torch.Tensor | None = None
) -> None:
    """PNG of `reconstructions_grid`: test images above, their reconstructions below."""
    grid = reconstructions_grid(model, images, n, labels)
    chosen = pick_examples(labels, n, images.shape[0])
    fig, ax = _image_figure(grid, width_in=9)
    side = _cell_side(grid, len(chosen))
    ax.set_yticks(_cell_centers(2, side), ["test image", "reconstruction"])
    if labels is None:
        ax.set_xticks([])
        ax.set_xlabel(f"the first {len(chosen)} test images")
    else:
        # the class of each column is what a reader checks the reconstruction against
        ax.set_xticks(_cell_centers(len(chosen), side), [str(int(labels[i])) for i in chosen])
        ax.set_xlabel("class of the test image (the first test image of each class)")
    _titled(ax, "Reconstructions", "likelihood mean of decode(mu), mu = the test image's posterior mean")
    _save(fig, path)


def save_samples(model: VAE, path: Path, n: int = 64, seed: int = SAMPLES_SEED) -> None:
    """PNG of `samples_grid`: mean images of prior draws."""
    fig, ax = _image_figure(samples_grid(model, n, seed), width_in=6.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{n} independent draws, 8 per row (seed {seed})")
    _titled(ax, "Samples from the prior", "likelihood mean of decode(z), z ~ N(0, I)")
    _save(fig, path)


def save_interpolation(
    model: VAE, images: torch.Tensor, labels: torch.Tensor, path: Path, rows: int = 5, steps: int = 10
) -> None:
    """PNG of `interpolation_grid`, rows named by the classes they join, columns by t."""
    grid = interpolation_grid(model, images, labels, rows, steps)
    fig, ax = _image_figure(grid, width_in=8)
    side = _cell_side(grid, steps)
    t = torch.linspace(0.0, 1.0, steps).tolist()
    ax.set_xticks(_cell_centers(steps, side), [f"{v:.2f}" for v in t])
    pairs = interpolation_pairs(labels, rows)
    ax.set_yticks(_cell_centers(rows, side), [f"{int(labels[a])} → {int(labels[b])}" for a, b in pairs])
    ax.set_xlabel("t, in z = (1 - t) mu_a + t mu_b")
    ax.set_ylabel("classes of test images a → b")
    _titled(ax, "Latent interpolation", "mean of decode(z) on the line between two test images' posterior means")
    _save(fig, path)


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
    fig, ax = _image_figure(grid, width_in=8)
    side = _cell_side(grid, len(values))
    ax.set_yticks(_cell_centers(len(chosen), side), [f"z{d + 1} ({kl_per_dim[d]:.1f})" for d in chosen])
    # rounded, and + 0.0 turns -0.0 into 0: linspace's middle value is -1.2e-07, not 0
    ax.set_xticks(_cell_centers(len(values), side), [f"{round(v, 2) + 0.0:g}" for v in values.tolist()])
    ax.set_xlabel("value of z_d (standard deviations of its prior marginal, from its mean)")
    ax.set_ylabel("latent dim (KL nats)")
    subtitle = f"the {len(chosen)} dims with the most KL, most first; the others at one test image's posterior mean"
    _titled(ax, "Latent traversals", subtitle)
    _save(fig, path)


def save_manifold(model: VAE, path: Path, n: int = 20) -> None:
    """PNG of `manifold_grid`, with the z1 and z2 values of the cells on the axes."""
    grid = manifold_grid(model, n)
    fig, ax = _image_figure(grid, width_in=8.5)
    centers = _cell_centers(n, _cell_side(grid, n))
    q = manifold_values(n).tolist()
    shown = _sparse_ticks(n)
    # every column named (up to 20): small type, so that neighbours' labels do not touch
    ax.set_xticks([centers[i] for i in shown], [f"{q[i]:.2f}" for i in shown], fontsize=7)
    ax.set_yticks([centers[i] for i in shown], [f"{q[n - 1 - i]:.2f}" for i in shown], fontsize=8)
    ax.set_xlabel("z1 = mean + q std of its prior marginal (q shown; z1 itself for N(0, I))")
    ax.set_ylabel("z2 = mean + q std (q shown)")
    _titled(ax, "Decoded latent manifold", f"mean of decode(z) on a {n} x {n} grid of N(0, 1) quantiles 0.05..0.95")
    _save(fig, path)


# ----------------------------------------------------------------------------------------------
# plots


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


def save_latent_scatter(mu: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Test-set posterior means coloured by class: as they are for 2 dims, PCA for more, a strip plot for 1."""
    mu, labels = mu.detach().float().cpu(), labels.cpu()
    coords, axis_labels, note = _scatter_coordinates(mu, labels)
    # a fixed random subset, drawn in random order so that no class is always painted on top
    keep = torch.randperm(mu.shape[0], generator=torch.Generator().manual_seed(SCATTER_SEED))[:SCATTER_MAX_POINTS]
    coords, shown = coords[keep].numpy(), labels[keep]
    cmap = matplotlib.colormaps["tab10"]
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(coords[:, 0], coords[:, 1], c=cmap(shown.numpy() % 10), s=4, alpha=0.6, linewidths=0)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=cmap(c % 10), label=str(c)) for c in torch.unique(shown).tolist()
    ]
    ax.legend(handles=handles, title="class", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.grid(alpha=0.3)
    _titled(fig, f"Posterior means of {len(keep)} test images ({note})")
    _save(fig, path)


CURVE_PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "(a) loss",
        "nats / image",
        (("train_loss", "train: -log p(x|z) + beta KL"), ("val_neg_elbo", "validation: -ELBO (beta = 1)")),
    ),
    ("(b) reconstruction", "-log p(x|z), nats / image", (("train_recon", "train"), ("val_recon", "validation"))),
    ("(c) KL", "KL(q(z|x) || p(z)), nats / image", (("train_kl", "train"), ("val_kl", "validation"))),
    ("(d) KL weight", "beta (dimensionless)", (("beta", "beta at the end of the epoch"),)),
)


def _plot_series(ax: Axes, history: list[dict[str, Any]], series: tuple[tuple[str, str], ...]) -> None:
    """One line per series, skipping epochs where it is missing; a note when nothing was recorded."""
    plotted = 0
    for key, label in series:
        points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
            plotted += 1
    if plotted:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")


def _beta_from_zero(ax: Axes, history: list[dict[str, Any]]) -> None:
    """Start the beta axis at 0: a constant beta otherwise gets a y axis of +-4% noise around it."""
    betas = [row["beta"] for row in history if row.get("beta") is not None]
    ax.set_ylim(0, max(betas, default=1.0) * 1.1 or 1.0)


def _epoch_axis(ax: Axes, history: list[dict[str, Any]]) -> None:
    """Whole epochs on the x axis, half an epoch of room at each end (else one epoch gets 0.945..1.05)."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if history:
        ax.set_xlim(min(row["epoch"] for row in history) - 0.5, max(row["epoch"] for row in history) + 0.5)


def save_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Per-epoch training and validation curves in four panels: loss, reconstruction, KL, beta."""
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    for ax, (title, unit, series) in zip(fig.subplots(2, 2).flat, CURVE_PANELS):
        _plot_series(ax, history, series)
        _epoch_axis(ax, history)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    _beta_from_zero(fig.axes[3], history)
    subtitle = "train: mean over the epoch's batches; validation: after the epoch, beta = 1, fixed noise"
    _titled(fig, f"Training curves ({len(history)} epoch{'' if len(history) == 1 else 's'})", subtitle)
    _save(fig, path)


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


def save_kl_per_dim(kl_per_dim: Sequence[float], path: Path, active: Sequence[bool] | None = None) -> None:
    """Bar chart of the KL carried by each latent dimension, inactive ones (if flagged) grey and dashed."""
    if active is not None and len(active) != len(kl_per_dim):
        raise ValueError(f"{len(active)} active-unit flags for {len(kl_per_dim)} latent dimensions")
    dims = np.arange(1, len(kl_per_dim) + 1)
    fig = Figure(figsize=(min(11.0, max(7.0, 3 + 0.3 * len(dims))), 5), layout="constrained")
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
    _titled(fig, f"KL per latent dimension (total {sum(kl_per_dim):.1f} nats / image)")
    _save(fig, path)


# ----------------------------------------------------------------------------------------------
# one run's figures


def applicable_figures(latent_dim: int) -> list[str]:
    """The kinds in FIGURES that a run with this latent size gets (the manifold needs exactly 2 dims)."""
    return [kind for kind in FIGURES if kind != "manifold" or latent_dim == 2]


def write_run_figures(
    model: VAE,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    history: list[dict[str, Any]],
    kl_per_dim: Sequence[float],
    active_units_mask: Sequence[bool] | None,
    mu_test: torch.Tensor,
    out_dir: Path,
) -> list[Path]:
    """Write every figure that applies to the run as out_dir/<kind>.png; returns their paths.

    `mu_test` (and `kl_per_dim`) are computed from the model when not given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    mu_test = mu_test.cpu()
    writers: dict[str, Any] = {
        "reconstructions": lambda path: save_reconstructions(model, test_images, path, labels=test_labels),
        "samples": lambda path: save_samples(model, path),
        "interpolation": lambda path: save_interpolation(model, test_images, test_labels, path),
        "traversal": lambda path: save_traversal(model, test_images[0], kl_per_dim, path),
        "latent_scatter": lambda path: save_latent_scatter(mu_test, test_labels, path),
        "manifold": lambda path: save_manifold(model, path),
        "curves": lambda path: save_curves(history, path),
        "kl_per_dim": lambda path: save_kl_per_dim(kl_per_dim, path, active_units_mask),
    }
    paths = []
    for kind in applicable_figures(model.latent_dim):
        paths.append(out_dir / f"{kind}.png")
        writers[kind](paths[-1])
    write_strips(model, test_images, test_labels, kl_per_dim, out_dir / "strips")
    return paths


def comparison_strips(
    model: VAE, test_images: torch.Tensor, test_labels: torch.Tensor, kl_per_dim: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Two-row, ten-column versions of the image figures, all the same size, for sweep comparisons."""
    return {
        "reconstructions": reconstructions_grid(model, test_images, n=10, labels=test_labels),
        "samples": samples_grid(model, n=20, per_row=10),
        "interpolation": interpolation_grid(model, test_images, test_labels, rows=2, steps=10),
        "traversal": traversal_grid(model, test_images[0], kl_per_dim, dims=2, values=torch.linspace(-3, 3, 10)),
    }


def write_strips(
    model: VAE, test_images: torch.Tensor, test_labels: torch.Tensor, kl_per_dim: Sequence[float], out_dir: Path
) -> None:
    """Each comparison strip as a bare PNG (no axes), read back by a sweep's comparison grids."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, grid in comparison_strips(model, test_images, test_labels, kl_per_dim).items():
        io.atomic_write(out_dir / f"{kind}.png", lambda handle, grid=grid: save_image(grid, handle, format="png"))


# ----------------------------------------------------------------------------------------------
# comparison figures of a sweep, rebuilt from the runs' saved files without any model

COMPARISON_KINDS: tuple[str, ...] = ("reconstructions", "samples", "interpolation", "traversal")


STRIP_CAPTIONS = {
    "reconstructions": "top: test digits 0-9; bottom: their reconstructions",
    "samples": "20 decoded draws from the prior (the same z for every run of the same latent size)",
    "interpolation": "two latent paths between test digits (0 to 1, 2 to 3)",
    "traversal": "the two dimensions with the most KL, each from -3 to 3",
}


def save_comparison_grid(kind: str, runs: Sequence[tuple[str, Path]], path: Path) -> None:
    """One labelled row per run: each run's figures/strips/<kind>.png, on a shared scale."""
    found = [(name, run / "figures" / "strips" / f"{kind}.png") for name, run in runs]
    found = [(name, png) for name, png in found if png.exists()]
    strips = [matplotlib.image.imread(png) for _, png in found]
    aspect = max((s.shape[0] / s.shape[1] for s in strips), default=0.2)
    fig = Figure(figsize=(10, 0.9 + 10 * aspect * max(1, len(found))), layout="constrained")
    axes = fig.subplots(max(1, len(found)), 1, squeeze=False)[:, 0]
    for ax, (name, _), strip in zip(axes, found, strips):
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if not found:
        axes[0].text(0.5, 0.5, f"no run has a {kind} strip", ha="center", va="center")
        axes[0].set_axis_off()
    _titled(fig, f"{kind.capitalize()}, one row per run", STRIP_CAPTIONS.get(kind))
    _save(fig, path)


def save_curves_comparison(histories: Sequence[tuple[str, list[dict[str, Any]]]], path: Path) -> None:
    """Every run's curves on shared axes: validation -ELBO, train reconstruction, train KL, beta."""
    panels = (
        ("val_neg_elbo", "validation -ELBO (beta = 1)"),
        ("train_recon", "train reconstruction -log p(x|z)"),
        ("train_kl", "train KL(q(z|x) || p(z))"),
        ("beta", "beta"),
    )
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2).flat
    for ax, (key, title) in zip(axes, panels):
        for index, (name, history) in enumerate(histories):
            points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=2, color=f"C{index % 10}", label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("beta" if key == "beta" else "nats / image")
        ax.grid(alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    _titled(fig, "Training curves of every run", "nats per image, summed over pixels and latents")
    _save(fig, path)


def save_rate_distortion(points: Sequence[tuple[str, float, float]], path: Path) -> None:
    """Rate (test KL) against distortion (test reconstruction NLL), one labelled point per run."""
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    for index, (name, rate, distortion) in enumerate(points):
        ax.scatter(rate, distortion, color=f"C{index % 10}", s=30)
        ax.annotate(name, (rate, distortion), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("rate: test KL(q(z|x) || p(z)), nats / image")
    ax.set_ylabel("distortion: test -log p(x|z), nats / image")
    ax.grid(alpha=0.3)
    _titled(ax, "Rate-distortion (Alemi et al. 2018)", "lower left is better; the diagonal -ELBO = R + D is constant along slope -1")
    _save(fig, path)
