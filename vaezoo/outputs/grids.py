"""Image grids as tensors: which test images to show, and (3, H, W) grids in [0, 1] of model decodes.

Each builder returns a float tensor laid out as torchvision's `make_grid` lays it out (`tile`),
so that a comparison report can stack one row per run. Every random draw uses a torch.Generator with a fixed seed, and
all model work runs under `torch.inference_mode()` with the model in eval mode, so the same
checkpoint always gives the same pictures. Latent dimensions are named z1..zD (1-based, as in the
math): `kl_per_dim[0]` is z1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

import torch

from vaezoo.model.vae import VAE

PADDING = 2  # pixels between grid cells
PAD_VALUE = 0.5  # grey separators: MNIST digits are white on black, so neither colour would read as a border
SAMPLES_SEED = 0
TRAVERSAL_VALUES = torch.linspace(-3, 3, 11)


def tile(images: torch.Tensor, per_row: int, padding: int = PADDING, pad_value: float = PAD_VALUE) -> torch.Tensor:
    """A (3, H, W) grid of (N, C, h, w) images, `per_row` to a row, `padding` pixels of `pad_value`
    between and around the cells: torchvision's make_grid layout, without importing torchvision (a
    second of start-up). Grey images are repeated over the three channels."""
    n, _, h, w = images.shape
    columns, rows = min(per_row, n), math.ceil(n / per_row)
    grid = images.new_full((3, rows * (h + padding) + padding, columns * (w + padding) + padding), pad_value)
    for k, image in enumerate(images):
        top, left = padding + (k // columns) * (h + padding), padding + (k % columns) * (w + padding)
        grid[:, top : top + h, left : left + w] = image.expand(3, h, w)
    return grid


def save_grid_png(grid: torch.Tensor, handle: BinaryIO) -> None:
    """A (3, H, W) grid in [0, 1] as an 8-bit PNG, rounded as torchvision's save_image rounds."""
    from PIL import Image  # matplotlib's dependency; imported where a PNG is written

    pixels = grid.detach().cpu().float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(handle, format="png")


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
    return tile(images.detach().float().cpu(), per_row).clamp(0.0, 1.0)


def _decode_mean(model: VAE, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The likelihood's mean image for each z (given its label y, for a conditional model): what a reader
    expects to see for 'decode(z)'."""
    device = _device(model)
    return model.likelihood.mean(model.decode(z.to(device), None if y is None else y.to(device)))


def _encode_mean(model: VAE, images: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The posterior means of a few images (no batching: callers pass tens of images), each read with its
    label y by a conditional model."""
    device = _device(model)
    mu, _ = model.encode(images.to(device), None if y is None else y.to(device))
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
    picked = pick_examples(labels, n, images.shape[0])
    chosen = images[picked]
    # a conditional model reconstructs each digit given its own label (labels are always given for one)
    y = labels[picked] if labels is not None and model.conditional else None
    with _evaluating(model):
        recon = _decode_mean(model, _encode_mean(model, chosen, y), y)
    return _grid(torch.cat([chosen.to(recon.device), recon]), per_row=chosen.shape[0])


def samples_grid(model: VAE, n: int = 64, seed: int = SAMPLES_SEED, per_row: int = 8) -> torch.Tensor:
    """Mean images of n draws z ~ p(z) from the model's prior, 8 to a row."""
    # drawn on the CPU so that every device shows the same samples for the same seed
    with _evaluating(model):
        return _grid(model.sample(n, torch.Generator().manual_seed(seed)), per_row=per_row)


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
        mean, std = (t.cpu() for t in model.latent.density().marginal_moments())
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
    mean, std = (t.cpu() for t in model.latent.density().marginal_moments())
    z = mean + torch.stack([z1, z2], dim=-1).reshape(-1, 2) * std
    with _evaluating(model):
        return _grid(_decode_mean(model, z), per_row=n)
