"""Every test-set metric of a trained model, phase by phase, in one typed record."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from vaezoo.data import DataSpec, DeviceData
from vaezoo.evaluate import family
from vaezoo.evaluate.bounds import elbo_means, eval_generator, importance_weighted_nll
from vaezoo.evaluate.latents import (
    MI_ESTIMATOR,
    CodeMoments,
    code_moments,
    code_perplexity,
    latent_stats,
    layer_stats,
)
from vaezoo.evaluate.probe import classification_error, probe_accuracy
from vaezoo.evaluate.progress import Advance, quiet_phase
from vaezoo.evaluate.records import TestMetrics
from vaezoo.model.vae import VAE
from vaezoo.spec.experiment import ExperimentSpec

Phase = Callable[..., AbstractContextManager[Advance]]


@dataclass(frozen=True)
class Evaluation:
    """A trained model's test metrics, the test posterior means they were computed from (for the
    figures, so that the test set is encoded once) and each test image's -L_K."""

    metrics: TestMetrics
    test_mu: torch.Tensor
    test_nll_per_image: torch.Tensor  # -L_K of each test image, for paired comparisons between runs


@dataclass(frozen=True)
class FamilyEval:
    """Which of the families' numbers to compute: the total correlation and the MMD (`metrics`), and the
    classifier FID of `fid_samples` samples (0: none) against `data`'s test split."""

    metrics: bool = False
    fid_samples: int = 0
    data: DataSpec | None = None

    @classmethod
    def of(cls, spec: ExperimentSpec) -> FamilyEval:
        """As the spec's eval section asks."""
        return cls(spec.eval.family_metrics, spec.eval.fid_samples, spec.data)


def family_fields(
    model: VAE, data: DeviceData, moments: CodeMoments, batch_size: int, family_eval: FamilyEval, phase: Phase
) -> dict[str, Any]:
    """TestMetrics' family fields that apply to the model and were asked for (the rest stay None)."""
    fields: dict[str, Any] = {}
    layout = model.latent.layout
    if getattr(model, "conditional", False):
        return fields  # q(z|x, y), p(x|y): what the aggregate posterior and the samples are needs a label model
    # categorical codes have neither a Gaussian's TC nor a kernel distance to their prior that means the same
    if family_eval.metrics and getattr(layout, "categories", None) is None:
        with phase("total correlation, MMD between q(z) and p(z)", key="family_metrics"):
            n = len(moments.mean)
            if model.posterior.is_base_gaussian and model.posterior.code_is_base and not layout.hierarchical:
                generator = eval_generator(moments.mean.device)
                fields["total_correlation"] = family.total_correlation(moments.mean, moments.logvar, generator)
                rows = family.tc_rows(n, moments.mean.shape[1])
                fields["total_correlation_estimator"] = family.TC_ESTIMATOR.format(
                    points=min(n, family.TC_POINTS), n=n, rows=rows
                )
            fields["posterior_prior_mmd"] = family.posterior_prior_mmd(model, data.test_images, batch_size)
            scale = 2 * layout.dim * family.MMD_SCALE**2
            fields["mmd_estimator"] = family.MMD_ESTIMATOR.format(n=len(data.test_images), c=scale)
    if family_eval.fid_samples > 0 and family_eval.data is not None:
        with phase(f"classifier FID of {family_eval.fid_samples} samples", key="sample_fid"):
            fid = family.model_sample_fid(model, family_eval.data, family_eval.fid_samples, batch_size)
        fields |= {"sample_fid": fid.fid, "fid_samples": family_eval.fid_samples}
        fields["fid_classifier_accuracy"] = fid.classifier_accuracy
    return fields


def evaluate_all(
    model: VAE,
    data: DeviceData,
    iw_samples: int,
    batch_size: int,
    classes: int,
    phase: Phase = quiet_phase,
    family_eval: FamilyEval | None = None,
) -> Evaluation:
    """Every test-set metric of a trained model (nats per image, beta = 1); `phase` shows each step;
    `family_eval` says which of the families' numbers to add (none by default)."""
    test = data.test_images
    with phase("test ELBO", key="test_elbo"):
        elbo = elbo_means(model, test, batch_size, data.test_labels)
    start = time.perf_counter()
    with phase(f"importance sampling, K = {iw_samples} (images)", len(test), key="importance_sampling") as advance:
        iw = importance_weighted_nll(model, test, iw_samples, batch_size, advance, data.test_labels)
    iw_seconds = time.perf_counter() - start
    with phase("active units, KL per dimension, mutual information", key="latent_statistics"):
        moments = code_moments(model, test, batch_size, data.test_labels)
        mu = moments.mean
        stats = latent_stats(model, mu, moments.logvar, moments.noise)
        layers = layer_stats(model, test, batch_size, data.test_labels)
    with phase("linear probe on the posterior means", key="probe"):
        train = data.binarization.eval_set(data.train_images, "probe")
        train_mu = code_moments(model, train, batch_size, data.train_labels).mean
        probe = probe_accuracy(train_mu, data.train_labels, mu, data.test_labels, classes)
    families = family_fields(model, data, moments, batch_size, family_eval or FamilyEval(), phase)
    class_error = None
    if model.semi_supervised:
        with phase("classification error of q(y|x)", key="classification"):
            class_error = classification_error(model, test, data.test_labels, batch_size)
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
        # a semi-supervised model's label is latent: its bounds sum it out
        likelihood_of="p(x|y)" if model.conditional and not model.semi_supervised else "p(x)",
        test_class_error=class_error,
        code_perplexity=code_perplexity(model, mu),
        nll_note=model.posterior.nll_note,
        **families,
    )
    return Evaluation(metrics, mu, iw.per_image)
