"""Typed records (RunMetrics, HistoryRow, sweep rows) with plausible numbers, for tests of the tables
and writers that read them: every field set, those a test cares about given by name."""

from __future__ import annotations

from typing import Any

from vaezoo.evaluate.records import HistoryRow, RunMetrics
from vaezoo.outputs.sweep_entries import SweepEntry
from vaezoo.parts.likelihoods import NLLKind


def run_metrics(**changes: Any) -> RunMetrics:
    """A finished run's metrics: 4 latent dimensions, 2 of them active; `changes` replace fields."""
    fields: dict[str, Any] = {
        "test_neg_elbo": 100.0,
        "test_recon_nll": 92.0,
        "test_kl": 8.0,
        "kl_estimate": "closed-form",
        "test_nll_iw": 95.5,
        "test_nll_iw_stderr": 0.3,
        "iw_samples": 100,
        "iw_seconds": 1.0,
        "elbo_is_gap": 4.5,
        "test_bits_per_dim": 0.18,
        "active_units": 2,
        "active_mask": [True, False, True, False],
        "kl_per_dim": [5.0, 0.001, 3.0, 0.002],
        "mutual_information": 6.0,
        "mutual_information_max": 9.21,
        "mutual_information_estimator": "minibatch",
        "probe_accuracy": 0.8,
        "nll_kind": NLLKind.BINARY_MASS,
        "binarize": "dynamic",
        "split": "50000/10000/10000 train/val/test",
        "epochs": 2,
        "params": 1234,
        "train_seconds": 1.0,
        "train_images_per_second": 10.0,
        "device": "cpu",
        "phase_seconds": {"train": 1.0},
    }
    return RunMetrics(**(fields | changes))


def history_row(epoch: int, **changes: Any) -> HistoryRow:
    """One epoch of training; `changes` replace fields."""
    fields: dict[str, Any] = {
        "epoch": epoch,
        "step": 10 * epoch,
        "train_loss": 100.0 - epoch,
        "train_recon": 90.0 - epoch,
        "train_kl": 10.0,
        "beta": 1.0,
        "seconds": 1.0,
        "images_per_second": 100.0,
        "lr": 1e-3,
        "val_neg_elbo": 102.0 - epoch,
        "val_recon": 92.0 - epoch,
        "val_kl": 10.0,
        "val_seconds": 0.1,
    }
    return HistoryRow(**(fields | changes))


def sweep_entry(name: str, kind: NLLKind, nll: float, probe: float, **changes: Any) -> SweepEntry:
    """One point's row of a sweep table (a single run, varied key `run`)."""
    bits = nll / 543.4 if kind is not NLLKind.DENSITY else None
    metrics = run_metrics(
        nll_kind=kind,
        test_nll_iw=nll,
        test_neg_elbo=nll + 5,
        test_recon_nll=nll - 20,
        test_kl=25.0,
        elbo_is_gap=5.0,
        test_bits_per_dim=bits,
        active_units=10,
        mutual_information=8.0,
        probe_accuracy=probe,
        train_seconds=10.0,
        **changes,
    )
    return SweepEntry({"run": name}, metrics)
