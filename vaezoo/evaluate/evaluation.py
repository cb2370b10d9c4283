"""Every test-set metric of a trained model, phase by phase, in one typed record."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from vaezoo.data import DeviceData
from vaezoo.evaluate.bounds import elbo_means, importance_weighted_nll
from vaezoo.evaluate.latents import MI_ESTIMATOR, code_moments, latent_stats, layer_stats
from vaezoo.evaluate.probe import probe_accuracy
from vaezoo.evaluate.progress import Advance, quiet_phase
from vaezoo.evaluate.records import TestMetrics
from vaezoo.model.vae import VAE

Phase = Callable[..., AbstractContextManager[Advance]]


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
