"""Bounds on log p(x) over a dataset, with fixed noise so reruns agree exactly: the single-sample
ELBO and the importance-weighted L_K with its standard error.

A semi-supervised model (M2: `model.semi_supervised`) has its label latent: its bounds are of p(x),
y summed out over every class, whatever labels the caller holds (`vaezoo.model.semi_supervised`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaezoo.evaluate.chunking import decoder_footprint, element_budget, is_chunks, samples_per_chunk
from vaezoo.evaluate.progress import Advance
from vaezoo.model.semi_supervised import class_labels, marginal_elbo
from vaezoo.model.vae import VAE

EVAL_NOISE_SEED = 0  # the reparameterization noise of every evaluation, so reruns agree exactly


@dataclass(frozen=True)
class ELBOMeans:
    """Per-image means over a dataset, in nats, with beta = 1."""

    neg_elbo: float
    recon_nll: float
    kl: float


@dataclass(frozen=True)
class ImportanceWeighted:
    """-L_K per image averaged over a dataset (nats), the standard error of that mean, and each image's
    -L_K (float64, on the CPU), so that two models can be compared image by image."""

    nll: float
    stderr: float
    samples: int
    per_image: torch.Tensor


def eval_generator(device: torch.device) -> torch.Generator:
    """A generator on `device` seeded with EVAL_NOISE_SEED: every evaluation draws the same noise."""
    return torch.Generator(device).manual_seed(EVAL_NOISE_SEED)


@torch.inference_mode()
def elbo_means(model: VAE, images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None) -> ELBOMeans:
    """The single-sample ELBO averaged over `images`, with fixed noise so that it is repeatable; a
    conditional model reads the images' `labels` (its ELBO bounds log p(x|y)), another ignores them."""
    model.eval()
    generator = eval_generator(images.device)
    sums = torch.zeros(2, dtype=torch.float64, device=images.device)
    for batch, y in zip(images.split(batch_size), _label_batches(labels, batch_size, len(images)), strict=True):
        if model.semi_supervised:  # -U(x): y summed out
            terms = marginal_elbo(model, batch, generator)
        else:
            terms = model.elbo(batch, generator=generator, y=y)
        sums += torch.stack([terms.recon_nll.sum(), terms.kl.sum()]).double()
    recon, kl = (sums / images.shape[0]).tolist()
    return ELBOMeans(neg_elbo=recon + kl, recon_nll=recon, kl=kl)


def _label_batches(labels: torch.Tensor | None, batch_size: int, n: int) -> list[torch.Tensor | None]:
    """The labels split as the images are (`batch_size` at a time), or None for each batch of `n` images."""
    if labels is None:
        return [None] * math.ceil(n / batch_size)
    return list(labels.split(batch_size))


@torch.inference_mode()
def log_likelihood_iw(
    model: VAE,
    x: torch.Tensor,
    samples: int,
    generator: torch.Generator | None = None,
    chunk: int | None = None,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x) per image of the batch `x`, K = `samples` (for a
    conditional model, of p(x|y) with q(z|x, y) given the labels `y`).

    The K samples are drawn `chunk` at a time (by default as `is_chunks` sizes them) and combined
    with a running logsumexp, so K = 5000 fits in memory whatever the batch.
    """
    model.eval()
    if chunk is None:
        chunk = samples_per_chunk(samples, len(x), decoder_footprint(model, x), element_budget(x.device))
    if model.semi_supervised:
        return _class_marginal_iw(model, x, samples, generator, chunk)
    return _chunked_iw(model, x, samples, generator, chunk, model.features(x, y), y)


def _class_marginal_iw(
    model: VAE, x: torch.Tensor, samples: int, generator: torch.Generator | None, chunk: int
) -> torch.Tensor:
    """log sum_y p(y) (1/K) sum_k p(x, z_yk | y) / q(z_yk | x, y): K draws of q(z|x, y) for every class y
    and the uniform p(y); an unbiased estimate of p(x), so its log is a stochastic lower bound."""
    h = model.encoder(x)
    per_class = []
    for label in range(model.classes):
        y = class_labels(len(x), label, x.device)
        per_class.append(_chunked_iw(model, x, samples, generator, chunk, model.with_label(h, y), y))
    return torch.logsumexp(torch.stack(per_class), dim=0) - math.log(model.classes)


def _chunked_iw(
    model: VAE,
    x: torch.Tensor,
    samples: int,
    generator: torch.Generator | None,
    chunk: int,
    features: torch.Tensor,
    y: torch.Tensor | None,
) -> torch.Tensor:
    """L_K from the posterior's `features`, the K samples drawn `chunk` at a time (float64, (B,))."""
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    for start in range(0, samples, chunk):
        weights = model.log_weights(x, min(chunk, samples - start), generator, features, y)
        total = torch.logaddexp(total, torch.logsumexp(weights.double(), dim=0))
    return total - math.log(samples)


def importance_weighted_nll(
    model: VAE,
    images: torch.Tensor,
    samples: int,
    batch_size: int,
    advance: Advance | None = None,
    labels: torch.Tensor | None = None,
) -> ImportanceWeighted:
    """-log p(x) estimated by -L_K over `images`, batched over images, with its standard error; for a
    conditional model -log p(x|y), given the images' `labels` (which an unconditional one ignores;
    a semi-supervised one draws K samples for each class and sums y out).

    Batches hold at most `batch_size` images, fewer where the decoder's activations would not fit
    the device's budget (`is_chunks`); `advance(n)` is told the images finished after each batch.
    """
    generator = eval_generator(images.device)
    chunks = is_chunks(model, samples, min(batch_size, len(images)), images)
    parts = []
    label_batches = _label_batches(labels, chunks.images, len(images))
    for batch, y in zip(images.split(chunks.images), label_batches, strict=True):
        parts.append(-log_likelihood_iw(model, batch, samples, generator, chunks.samples, y))
        if advance is not None:
            advance(len(batch))
    nll = torch.cat(parts)
    stderr = nll.std().item() / math.sqrt(len(nll)) if len(nll) > 1 else math.nan
    return ImportanceWeighted(nll=nll.mean().item(), stderr=stderr, samples=samples, per_image=nll.cpu())
