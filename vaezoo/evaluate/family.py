"""The numbers the VAE families are judged by, on the test set: the total correlation of the aggregate
posterior (beta-TCVAE, DIP-VAE), the MMD between the aggregate posterior and the prior (InfoVAE, WAE),
and a classifier FID of the model's samples (every family that generates)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaezoo.data.datasets import DATASETS, DataSpec
from vaezoo.evaluate.bounds import eval_generator
from vaezoo.evaluate.classifier import classifier_for, grey, sample_fid
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.model.vae import VAE
from vaezoo.parts.objectives.mmd import Kernel, kernel_matrix
from vaezoo.parts.objectives.tcvae import decompose

#: z rows per block of the (rows, N, D) per-dimension log-densities: 40 MiB of float32 at N = 10,000, D = 10
TC_ELEMENTS = 2**23

TC_POINTS = 10000  # test draws the TC averages (all of MNIST's: 2,000 gave 0.7 nats less on one model)
TC_ESTIMATOR = (
    "mean of log q(z) - sum_d log q(z_d) at one z ~ q(z|x) for each of {points} test images, q(z) and each "
    "q(z_d) the exact mixture of all N = {n} test posteriors (Chen et al. 2018's full-dataset estimate: "
    "their minibatch weighted sampling with the whole test set as the batch, tcvae.decompose, in blocks "
    "of {rows} rows)"
)

#: the kernel InfoVAE and WAE train with by default (Tolstikhin et al. 2018), c = 2 D scale^2
MMD_KERNEL: Kernel = "imq"
MMD_SCALE = 1.0
MMD_BLOCK = 2048  # rows per block of the kernel matrices
MMD_ESTIMATOR = (
    "unbiased MMD^2 between one z ~ q(z|x) per test image (N = {n}) and as many prior draws; "
    "inverse multiquadratic kernel c / (c + |a - b|^2), c = 2 D = {c:g} (scale 1)"
)

FID_SEED = 0  # the samples' draws: every run's FID compares the same prior noise through its own decoder


@torch.inference_mode()
def total_correlation(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None, points: int = TC_POINTS
) -> float:
    """TC = KL(q(z) || prod_d q(z_d)) of the aggregate posterior of N diagonal Gaussians (N, D) each,
    estimated at one draw from each of the first `points` posteriors (all N where fewer) with q(z) and
    each q(z_d) the exact mixture of all N (TC_ESTIMATOR); nats, about 0 or more (an estimate: it may
    fall a little below)."""
    n, dim = mu.shape
    q = DiagonalGaussian(mu.float(), logvar.float())  # float32: the (rows, N, D) densities dominate the cost
    z = q.rsample(generator=generator)[:points]
    rows = tc_rows(n, dim)
    log_w = torch.full((1, n), -math.log(n), device=mu.device)
    total = 0.0
    for start in range(0, len(z), rows):
        z_rows = z[start : start + rows]
        # log q(z|x) and log p(z) only feed the other two parts: zeros leave the total correlation as it is
        zeros = z_rows.new_zeros(len(z_rows))
        total += decompose(q, z_rows, zeros, zeros, log_w).total_correlation.double().sum().item()
    return total / len(z)


def tc_rows(n: int, dim: int) -> int:
    """The rows per block `total_correlation` evaluates for N posteriors of D dimensions."""
    return max(1, TC_ELEMENTS // max(1, n * dim))


def kernel_sum(a: torch.Tensor, b: torch.Tensor, kernel: Kernel, scale: float, same: bool) -> float:
    """sum_ij k(a_i, b_j) by blocks, leaving out i = j where `same` (a is b)."""
    total = 0.0
    for i in range(0, len(a), MMD_BLOCK):
        for j in range(0, len(b), MMD_BLOCK):
            block = kernel_matrix(a[i : i + MMD_BLOCK], b[j : j + MMD_BLOCK], kernel, scale)
            total += block.sum().item()
            if same and i == j:
                total -= block.diagonal().sum().item()
    return total


def blocked_mmd_squared(z: torch.Tensor, prior_z: torch.Tensor, kernel: Kernel, scale: float) -> float:
    """mmd.mmd_squared's unbiased MMD^2 for sets too large for whole kernel matrices, summed in blocks."""
    n, m = len(z), len(prior_z)
    if n < 2 or m < 2:
        return 0.0
    z, prior_z = z.double(), prior_z.double()
    within_q = kernel_sum(z, z, kernel, scale, same=True) / (n * (n - 1))
    within_p = kernel_sum(prior_z, prior_z, kernel, scale, same=True) / (m * (m - 1))
    return within_q + within_p - 2 * kernel_sum(z, prior_z, kernel, scale, same=False) / (n * m)


@torch.inference_mode()
def aggregate_posterior_draws(model: VAE, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """One z ~ q(z|x) per image (full latents, as the prior samples them), (N, dim), from the evaluation's
    fixed generator."""
    model.eval()
    generator = eval_generator(images.device)
    return torch.cat([model.latent.draw(model.encoder(batch), None, generator).z for batch in images.split(batch_size)])


@torch.inference_mode()
def posterior_prior_mmd(model: VAE, images: torch.Tensor, batch_size: int) -> float:
    """MMD^2 (MMD_ESTIMATOR) between the test set's aggregate posterior and the prior."""
    z = aggregate_posterior_draws(model, images, batch_size)
    generator = torch.Generator().manual_seed(1)  # the CPU's: the same prior draws on every device
    prior_z = model.latent.sample(len(z), generator).to(z.device, z.dtype)
    return blocked_mmd_squared(z, prior_z, MMD_KERNEL, MMD_SCALE)


@dataclass(frozen=True)
class SampleFID:
    """A classifier FID of samples, and the test accuracy of the classifier whose features it compares."""

    fid: float
    classifier_accuracy: float


def model_sample_fid(model: VAE, data: DataSpec, samples: int, batch_size: int) -> SampleFID:
    """The FID of `samples` model samples (drawn from FID_SEED) against the test split's grey levels, in
    the features of vaezoo's classifier for the dataset (trained once and cached: classifier.py)."""
    device = str(next(model.parameters()).device)
    trained = classifier_for(data, device=device)
    images, _ = DATASETS.get(data.dataset).read_split(data.resolved_root(), train=False)
    real = grey(images)
    fid = sample_fid(model, trained.network, real, samples=samples, seed=FID_SEED, batch_size=batch_size)
    return SampleFID(fid, trained.test_accuracy)
