"""Evaluation under torch.inference_mode in large batches: the test ELBO, the importance-weighted
log-likelihood, active units, KL per dimension, mutual information and a linear probe."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vaezoo.chunking import decoder_footprint, element_budget, is_chunks, samples_per_chunk
from vaezoo.data import DeviceData
from vaezoo.distributions import DiagonalGaussian, gaussian_log_density, log_mixture
from vaezoo.metrics import TestMetrics
from vaezoo.model import VAE
from vaezoo.progress import Advance, quiet_phase

Phase = Callable[..., AbstractContextManager[Advance]]

EVAL_NOISE_SEED = 0  # the reparameterization noise of every evaluation, so reruns agree exactly
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: Cov_x(E_q[z_d]) above this makes z_d active


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


@dataclass(frozen=True)
class LatentStats:
    """How the encoder uses its latent space, over a dataset."""

    kl_per_dim: list[float]
    active: list[bool]
    mutual_information: float


def _generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device).manual_seed(EVAL_NOISE_SEED)


@torch.inference_mode()
def elbo_means(model: VAE, images: torch.Tensor, batch_size: int) -> ELBOMeans:
    """The single-sample ELBO averaged over `images`, with fixed noise so that it is repeatable."""
    model.eval()
    generator = _generator(images.device)
    sums = torch.zeros(2, dtype=torch.float64, device=images.device)
    for batch in images.split(batch_size):
        terms = model.elbo(batch, generator=generator)
        sums += torch.stack([terms.recon_nll.sum(), terms.kl.sum()]).double()
    recon, kl = (sums / images.shape[0]).tolist()
    return ELBOMeans(neg_elbo=recon + kl, recon_nll=recon, kl=kl)


@torch.inference_mode()
def log_likelihood_iw(
    model: VAE, x: torch.Tensor, samples: int, generator: torch.Generator | None = None, chunk: int | None = None
) -> torch.Tensor:
    """L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x) per image of the batch `x`, K = `samples`.

    The K samples are drawn `chunk` at a time (by default as `is_chunks` sizes them) and combined
    with a running logsumexp, so K = 5000 fits in memory whatever the batch.
    """
    model.eval()
    if chunk is None:
        chunk = samples_per_chunk(samples, len(x), decoder_footprint(model, x), element_budget(x.device))
    features = model.encoder(x)
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    for start in range(0, samples, chunk):
        weights = model.log_weights(x, min(chunk, samples - start), generator, features)
        total = torch.logaddexp(total, torch.logsumexp(weights.double(), dim=0))
    return total - math.log(samples)


def importance_weighted_nll(
    model: VAE, images: torch.Tensor, samples: int, batch_size: int, advance: Advance | None = None
) -> ImportanceWeighted:
    """-log p(x) estimated by -L_K over `images`, batched over images, with its standard error.

    Batches hold at most `batch_size` images, fewer where the decoder's activations would not fit
    the device's budget (`is_chunks`); `advance(n)` is told the images finished after each batch.
    """
    generator = _generator(images.device)
    chunks = is_chunks(model, samples, min(batch_size, len(images)), images)
    parts = []
    for batch in images.split(chunks.images):
        parts.append(-log_likelihood_iw(model, batch, samples, generator, chunks.samples))
        if advance is not None:
            advance(len(batch))
    nll = torch.cat(parts)
    stderr = nll.std().item() / math.sqrt(len(nll)) if len(nll) > 1 else math.nan
    return ImportanceWeighted(nll=nll.mean().item(), stderr=stderr, samples=samples, per_image=nll.cpu())


@torch.inference_mode()
def posterior_params(model: VAE, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of the posterior's base Gaussian (`VAE.encode`) for every image, batched."""
    model.eval()
    pairs = [model.encode(batch) for batch in images.split(batch_size)]
    return torch.cat([mu for mu, _ in pairs]), torch.cat([logvar for _, logvar in pairs])


@dataclass(frozen=True)
class CodeMoments:
    """Each image's code under q(z|x): its mean and log-variance per dimension, (N, D) each, and `noise`,
    (D,), the variance that estimating the means from samples adds to their variance over images
    (zero where the means are exact), which the active-unit count takes off."""

    mean: torch.Tensor
    logvar: torch.Tensor
    noise: torch.Tensor


@torch.inference_mode()
def code_moments(model: VAE, images: torch.Tensor, batch_size: int) -> CodeMoments:
    """The moments of every image's code that the latent diagnostics read, so that they mean the same
    for every posterior: exact where the code is the posterior's base Gaussian; a flow's from
    MOMENT_SAMPLES draws of its transformed z."""
    if model.posterior.code_is_base:
        mu, logvar = posterior_params(model, images, batch_size)
        return CodeMoments(mu, logvar, torch.zeros_like(mu[0]))
    model.eval()
    generator = _generator(images.device)
    means, variances = [], []
    for batch in images.split(max(1, batch_size // 8)):
        code = model.prior.code(model.posterior.rsample(model.encoder(batch), MOMENT_SAMPLES, generator).z)
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


MOMENT_SAMPLES = 64  # draws per image for a flow posterior's mean and variance


@torch.inference_mode()
def kl_per_dim(model: VAE, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL per latent dimension of the code over a dataset, (D,), from each image's code moments.

    KL(N(mu_d, var_d) || p_d), with p_d the prior's marginal of dimension d: in closed form where the
    prior has one, else with one sample per image. For a Gaussian code these are its posterior's own
    dimensions (summing to the KL for a factorized prior); for a flow, the Gaussian with its code's mean
    and variance: a per-dimension diagnostic that need not sum to the KL.
    """
    q = DiagonalGaussian(mu, logvar)
    if model.prior.closed_form_kl:
        return model.prior.kl(q).mean(0)
    z = q.rsample(generator=_generator(mu.device))
    return (gaussian_log_density(z, mu, logvar) - model.prior.marginal_log_prob(z)).mean(0)


@torch.inference_mode()
def latent_stats(model: VAE, mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> LatentStats:
    """KL per dimension, active units, and I(x; z) under q, from the code moments of a dataset
    (`noise`: see CodeMoments; none where the means are exact)."""
    active = active_dimensions(mu, torch.zeros_like(mu[0]) if noise is None else noise)
    return LatentStats(
        kl_per_dim=kl_per_dim(model, mu, logvar).tolist(),
        active=active.tolist(),
        mutual_information=mutual_information(mu, logvar),
    )


@dataclass(frozen=True)
class LayerStats:
    """A hierarchy's use of each latent layer over a dataset, bottom layer first."""

    kl: list[float]  # mean closed-form KL of the layer against the prior's conditional, nats/image
    active_units: list[int]  # dimensions with Cov_x E_q[z_d] > ACTIVE_UNIT_THRESHOLD


@torch.inference_mode()
def layer_stats(model: VAE, images: torch.Tensor, batch_size: int) -> LayerStats | None:
    """Each layer's KL and active units, from MOMENT_SAMPLES draws per image (E_q[z] of a lower layer
    averages its posterior mean over the draws of the layers above); None for a flat latent. A
    collapsed layer shows as KL ~ 0."""
    sizes = model.posterior.layer_sizes()
    if sizes is None or not model.posterior.layered_kl:
        return None
    model.eval()
    generator = _generator(images.device)
    means, noise = [], []
    kl_sum = torch.zeros(sum(sizes), dtype=torch.float64, device=images.device)
    for batch in images.split(max(1, batch_size // 8)):
        draw = model.posterior.rsample(model.encoder(batch), MOMENT_SAMPLES, generator)
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
    z = own.rsample(generator=_generator(mu.device))
    log_q_own = own.log_prob(z)
    log_qz = torch.cat([log_mixture(z_batch, mu, logvar) for z_batch in z.split(MI_ROWS)])
    return (log_q_own.double() - log_qz).mean().item()


MI_ROWS = 1024  # z rows per block of the N x N log-densities: 80 MiB of float64 at N = 10,000


def probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    classes: int,
    weight_decay: float = 1e-4,
) -> float:
    """Test accuracy of a linear softmax classifier fitted (L-BFGS, L2 penalty) on standardized features."""
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    weight, bias = fit_probe((train_features - mean) / std, train_labels, classes, weight_decay)
    with torch.inference_mode():
        predicted = (weight @ ((test_features - mean) / std).T.double() + bias[:, None]).argmax(0)
        return (predicted == test_labels).double().mean().item()


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, classes: int, weight_decay: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C, D), bias (C,)), float64, minimizing the mean cross-entropy + weight_decay * ||weight||^2.

    The problem is convex, so L-BFGS from zero reaches the same optimum from any start. The logits are
    held as (C, N): a softmax over a short leading axis runs along contiguous rows of N, about three
    times faster on a CPU than over a trailing axis of 10 (what F.cross_entropy's layout needs).
    """
    # float64 so that L-BFGS converges to the optimum rather than stalling on float32 rounding; and
    # outside inference mode, so that autograd may save these for backward
    x = features.T.double()
    onehot = F.one_hot(labels, classes).T.to(x.dtype)
    weight = torch.zeros(classes, x.shape[0], device=x.device, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(classes, 1, device=x.device, dtype=x.dtype, requires_grad=True)
    with torch.enable_grad():
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            log_p = torch.log_softmax(weight @ x + bias, dim=0)
            loss = -(log_p * onehot).sum() / x.shape[1] + weight_decay * weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return weight.detach(), bias.detach().squeeze(1)


@dataclass(frozen=True)
class Evaluation:
    """A trained model's test metrics, the test posterior means they were computed from (for the
    figures, so that the test set is encoded once) and each test image's -L_K."""

    metrics: TestMetrics
    test_mu: torch.Tensor
    test_nll_per_image: torch.Tensor  # -L_K of each test image, for paired comparisons between runs


def evaluate_all(
    model: VAE, data: DeviceData, iw_samples: int, batch_size: int, classes: int, phase: Phase = quiet_phase
) -> Evaluation:
    """Every test-set metric of a trained model (nats per image, beta = 1); `phase` shows each step."""
    test = data.test_images
    with phase("test ELBO", key="test_elbo"):
        elbo = elbo_means(model, test, batch_size)
    start = time.perf_counter()
    with phase(f"importance sampling, K = {iw_samples} (images)", len(test), key="importance_sampling") as advance:
        iw = importance_weighted_nll(model, test, iw_samples, batch_size, advance)
    iw_seconds = time.perf_counter() - start
    with phase("active units, KL per dimension, mutual information", key="latent_statistics"):
        moments = code_moments(model, test, batch_size)
        mu = moments.mean
        stats = latent_stats(model, mu, moments.logvar, moments.noise)
        layers = layer_stats(model, test, batch_size)
    with phase("linear probe on the posterior means", key="probe"):
        train_mu = code_moments(model, data.binarization.eval_set(data.train_images, "probe"), batch_size).mean
        probe = probe_accuracy(train_mu, data.train_labels, mu, data.test_labels, classes)
    pixels = test[0].numel()
    metrics = TestMetrics(
        test_neg_elbo=elbo.neg_elbo,
        test_recon_nll=elbo.recon_nll,
        test_kl=elbo.kl,
        kl_estimate=model.kl_estimate.value,
        test_nll_iw=iw.nll,
        test_nll_iw_stderr=iw.stderr,
        iw_samples=iw.samples,
        iw_seconds=iw_seconds,
        elbo_is_gap=elbo.neg_elbo - iw.nll,
        test_bits_per_dim=iw.nll / (pixels * math.log(2)) if model.likelihood.discrete else None,
        active_units=sum(stats.active),
        active_mask=stats.active,
        kl_per_dim=stats.kl_per_dim,
        mutual_information=stats.mutual_information,
        mutual_information_max=math.log(len(mu)),
        mutual_information_estimator=MI_ESTIMATOR.format(n=len(mu), log_n=math.log(len(mu))),
        probe_accuracy=probe,
        layer_kl=None if layers is None else layers.kl,
        layer_active_units=None if layers is None else layers.active_units,
    )
    return Evaluation(metrics, mu, iw.per_image)


MI_ESTIMATOR = (
    "E[log q(z|x) - log q(z)] with q(z) the mixture of the {n} test posteriors, one z per image; "
    "at most log N = {log_n:.2f} nats"
)
