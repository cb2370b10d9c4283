"""How a model uses its latent space over a dataset: each code's moments under q, active units, KL per
dimension and per layer, and the mutual information I(x; z)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaezoo.evaluate.bounds import eval_generator
from vaezoo.model.distributions import CategoricalCode, DiagonalGaussian, log_mixture
from vaezoo.model.vae import VAE
from vaezoo.parts.gumbel import gumbel_noise

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: Cov_x(E_q[z_d]) above this makes z_d active


MOMENT_SAMPLES = 64  # draws per image for a flow posterior's mean and variance


MI_ROWS = 1024  # z rows per block of the N x N log-densities: 80 MiB of float64 at N = 10,000


MI_ESTIMATOR = (
    "E[log q(z|x) - log q(z)] with q(z) the mixture of the {n} test posteriors, one z per image; "
    "at most log N = {log_n:.2f} nats"
)


@dataclass(frozen=True)
class LatentStats:
    """How the encoder uses its latent space, over a dataset."""

    kl_per_dim: list[float]
    active: list[bool]
    mutual_information: float


@torch.inference_mode()
def posterior_params(
    model: VAE, images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of the posterior's base Gaussian (`VAE.encode`) for every image, batched (a
    conditional model's given the images' `labels`)."""
    model.eval()
    pairs = [model.encode(batch, y) for batch, y in zip(images.split(batch_size), _split(labels, batch_size, images))]
    return torch.cat([mu for mu, _ in pairs]), torch.cat([logvar for _, logvar in pairs])


def _split(labels: torch.Tensor | None, size: int, images: torch.Tensor) -> list[torch.Tensor | None]:
    """The labels in batches of `size`, as the images are split, or None for each batch."""
    return list(labels.split(size)) if labels is not None else [None] * len(images.split(size))


@dataclass(frozen=True)
class CodeMoments:
    """Each image's code under q(z|x): its mean and log-variance per dimension, (N, D) each, and `noise`,
    (D,), the variance that estimating the means from samples adds to their variance over images
    (zero where the means are exact), which the active-unit count takes off."""

    mean: torch.Tensor
    logvar: torch.Tensor
    noise: torch.Tensor


@torch.inference_mode()
def code_moments(model: VAE, images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None) -> CodeMoments:
    """The moments of every image's code that the latent diagnostics read, so that they mean the same
    for every posterior: exact where the code is the posterior's base Gaussian; a flow's from
    MOMENT_SAMPLES draws of its transformed z. A conditional model encodes each image with its label."""
    if model.posterior.code_is_base:
        mu, logvar = posterior_params(model, images, batch_size, labels)
        return CodeMoments(mu, logvar, torch.zeros_like(mu[0]))
    model.eval()
    generator = eval_generator(images.device)
    means, variances = [], []
    small = max(1, batch_size // 8)
    for batch, y in zip(images.split(small), _split(labels, small, images)):
        code = model.latent.code(model.latent.draw(model.features(batch, y), MOMENT_SAMPLES, generator).z)
        means.append(code.mean(0))
        variances.append(code.var(0))
    variance = torch.cat(variances)
    logvar = variance.clamp_min(torch.finfo(variance.dtype).tiny).log()
    return CodeMoments(torch.cat(means), logvar, variance.mean(0) / MOMENT_SAMPLES)


def active_dimensions(means: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Cov_x(E_q[z_d]) > ACTIVE_UNIT_THRESHOLD for each dimension (Burda et al. 2015), from the images'
    posterior means, less the variance that sampling them added (`noise`, (D,))."""
    spread = means.double().var(0, correction=1 if len(means) > 1 else 0) - noise.double()
    return spread > ACTIVE_UNIT_THRESHOLD


@torch.inference_mode()
def kl_per_dim(model: VAE, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL per latent dimension of the code over a dataset, (D,), from each image's code moments.

    KL(N(mu_d, var_d) || p_d), with p_d the prior's marginal of dimension d: in closed form where the
    prior has one, else with one sample per image. For a Gaussian code these are its posterior's own
    dimensions (summing to the KL for a factorized prior); for a flow, the Gaussian with its code's mean
    and variance: a per-dimension diagnostic that need not sum to the KL.
    """
    return model.latent.code_kl_per_dim(DiagonalGaussian(mu, logvar), eval_generator(mu.device)).mean(0)


@torch.inference_mode()
def latent_stats(model: VAE, mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> LatentStats:
    """KL per dimension, active units, and I(x; z) under q, from the code moments of a dataset
    (`noise`: see CodeMoments; none where the means are exact). For a categorical latent a dimension
    is a categorical variable (`categorical_stats`), and for a codebook latent one code position: `mu` are
    then the codes' vectors, read back as one-hot codes by the prior (`CodebookPrior.one_hot`)."""
    codes = codebook_codes(model, mu)
    if codes is not None:
        return categorical_stats(model, codes.flatten(-2), codes.shape[-1])
    if model.latent.layout.categories is not None:
        return categorical_stats(model, mu)
    active = active_dimensions(mu, torch.zeros_like(mu[0]) if noise is None else noise)
    return LatentStats(
        kl_per_dim=kl_per_dim(model, mu, logvar).tolist(),
        active=active.tolist(),
        mutual_information=mutual_information(mu, logvar),
    )


@torch.inference_mode()
def categorical_stats(model: VAE, probs: torch.Tensor, categories: int | None = None) -> LatentStats:
    """The latent statistics of N categorical variables from each image's category probabilities (the
    code's exact means), (images, N * K): per variable, its mean closed-form KL(q(c_n|x) || p(c_n)); it
    is active when the total variance over the images of its K probabilities (the trace of Cov_x
    E_q[one-hot c_n]) exceeds ACTIVE_UNIT_THRESHOLD; and I(x; c) as for real codes, one c per image.
    `categories` is K, the layout's unless given (a codebook's codes: one-hot q, a point mass, whose
    I(x; c) is the entropy of the images' codes)."""
    k = model.latent.layout.categories if categories is None else categories
    code = CategoricalCode(probs.unflatten(-1, (-1, k)).clamp_min(torch.finfo(probs.dtype).tiny).log())
    kl = model.latent.density().kl(code).double().mean(0)
    spread = probs.double().var(0, correction=1 if len(probs) > 1 else 0).unflatten(-1, (-1, k)).sum(-1)
    return LatentStats(
        kl_per_dim=kl.tolist(),
        active=(spread > ACTIVE_UNIT_THRESHOLD).tolist(),
        mutual_information=categorical_mutual_information(code.log_probs),
    )


@torch.inference_mode()
def categorical_mutual_information(log_probs: torch.Tensor) -> float:
    """I(x; c) under q(x, c) = p_data(x) q(c|x) for categorical codes, log_probs (images, N, K): as
    `mutual_information`, with q(c) = (1/M) sum_m q(c|x_m) over the same M images and one c ~ q(c|x)
    per image. log q(c|x_m) = one-hot(c) . log q_m, so every pair comes from one matrix product."""
    generator = eval_generator(log_probs.device)
    perturbed = log_probs + gumbel_noise(log_probs.shape, generator, log_probs)
    code = torch.nn.functional.one_hot(perturbed.argmax(-1), log_probs.shape[-1]).flatten(-2).double()
    table = log_probs.flatten(-2).double().T  # (N * K, M)
    log_q_own = (code * table.T).sum(-1)
    log_qc = torch.cat([torch.logsumexp(rows @ table, dim=1) for rows in code.split(MI_ROWS)])
    return (log_q_own - log_qc + math.log(len(code))).mean().item()


def codebook_codes(model: VAE, mu: torch.Tensor) -> torch.Tensor | None:
    """The codes of codebook vectors `mu` as one-hot blocks, (images, N, K), read back by the prior
    (`CodebookPrior.one_hot`); None for a latent without a codebook."""
    one_hot = getattr(model.latent.density(), "one_hot", None)
    return None if one_hot is None else one_hot(mu)


@torch.inference_mode()
def code_perplexity(model: VAE, mu: torch.Tensor) -> float | None:
    """exp of the entropy of the codes' average use over the images and code positions, from the codes'
    vectors `mu` (`VAE.encode`): K when every codebook vector is used equally, 1 when one is used alone.
    None for a latent without a codebook (a prior without `one_hot`)."""
    codes = codebook_codes(model, mu)
    if codes is None:
        return None
    usage = codes.double().mean((0, 1))
    return torch.exp(-torch.special.xlogy(usage, usage).sum()).item()


@dataclass(frozen=True)
class LayerStats:
    """A hierarchy's use of each latent layer over a dataset, bottom layer first."""

    kl: list[float]  # mean closed-form KL of the layer against the prior's conditional, nats/image
    active_units: list[int]  # dimensions with Cov_x E_q[z_d] > ACTIVE_UNIT_THRESHOLD


@torch.inference_mode()
def layer_stats(
    model: VAE, images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None
) -> LayerStats | None:
    """Each layer's KL and active units, from MOMENT_SAMPLES draws per image (E_q[z] of a lower layer
    averages its posterior mean over the draws of the layers above); None for a flat latent. A
    collapsed layer shows as KL ~ 0."""
    sizes = model.latent.layout.sizes
    if len(sizes) == 1 or not model.posterior.layered_kl:
        return None
    model.eval()
    generator = eval_generator(images.device)
    means, noise = [], []
    kl_sum = torch.zeros(sum(sizes), dtype=torch.float64, device=images.device)
    small = max(1, batch_size // 8)
    for batch, y in zip(images.split(small), _split(labels, small, images)):
        draw = model.latent.draw(model.features(batch, y), MOMENT_SAMPLES, generator)
        means.append(draw.layer_mean.mean(0))
        noise.append(draw.layer_mean.var(0) / MOMENT_SAMPLES)
        kl_sum += draw.layer_kl.double().mean(0).sum(0)
    active = active_dimensions(torch.cat(means), torch.cat(noise).mean(0)).split(sizes)
    return LayerStats(
        kl=[part.sum().item() / len(images) for part in kl_sum.split(sizes)],
        active_units=[int(part.sum()) for part in active],
    )


@torch.inference_mode()
def mutual_information(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """I(x; z) under q(x, z) = p_data(x) q(z|x), with the dataset as p_data (Hoffman & Johnson 2016).

    I = E_x E_q(z|x)[log q(z|x) - log q(z)], with q(z) = (1/N) sum_n q(z|x_n) the aggregate posterior
    over the same N images and one z per image. Both log-densities are taken at the same z, so their
    noise cancels where it can (I = 0 exactly when every posterior is the same); at most log N.
    """
    own = DiagonalGaussian(mu, logvar)
    z = own.rsample(generator=eval_generator(mu.device))
    log_q_own = own.log_prob(z)
    log_qz = torch.cat([log_mixture(z_batch, mu, logvar) for z_batch in z.split(MI_ROWS)])
    return (log_q_own.double() - log_qz).mean().item()
