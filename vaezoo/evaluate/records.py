"""What a run measures, as typed records (its metrics and its history rows), and the one table of
metrics (label, unit, which way is better, digits, where it applies) that every console table,
report, sweep table and observation reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.parts.likelihoods import NLLKind


@dataclass(frozen=True)
class Metric:
    """How one number of a run is shown and compared."""

    key: str
    label: str
    short: str  # a table column's heading
    unit: str
    #: which way is better, or None where neither is (rate, mutual information)
    better: Literal["lower", "higher"] | None
    digits: int
    #: "nll" numbers are in the units of the run's NLL kind (a mass or a density): never compare across kinds
    kind: Literal["nll", "mass-only", "other"] = "other"

    def format(self, value: float | None) -> str:
        """The value at this metric's precision, or an em dash where it does not apply."""
        if value is None:
            return "—"
        if self.unit == "%":
            return f"{100 * value:.{self.digits}f} %"
        return f"{value:,.{self.digits}f}"

    def heading(self) -> str:
        """The long label with its unit, for a report's rows."""
        return f"{self.label} ({self.unit})" if self.unit and self.unit != "%" else self.label


#: The table: console, report, sweep tables and observations read labels, units and directions here.
METRICS = (
    Metric("test_nll_iw", "test NLL, importance-weighted", "test NLL (IS)", "nats/image", "lower", 2, "nll"),
    Metric("test_neg_elbo", "test -ELBO", "-ELBO", "nats/image", "lower", 2, "nll"),
    Metric("test_recon_nll", "reconstruction -log p(x|z)", "recon NLL", "nats/image", "lower", 2, "nll"),
    Metric("test_kl", "KL(q(z|x) || p(z))", "KL", "nats/image", None, 2),
    Metric("elbo_is_gap", "ELBO-to-IS gap", "ELBO-IS gap", "nats/image", "lower", 2),
    Metric("test_bits_per_dim", "test bits per dimension", "bits/dim", "bits/dim", "lower", 4, "mass-only"),
    Metric("active_units", "active units", "active units", "", "higher", 0),
    Metric("mutual_information", "mutual information I(x; z)", "MI", "nats", None, 2),
    Metric("probe_accuracy", "linear probe accuracy", "probe acc.", "%", "higher", 1),
    # a codebook latent's (VQ-VAE's) use of its K vectors: K when all are used equally, 1 for one alone
    Metric("code_perplexity", "code perplexity, exp H(average code use)", "code ppl.", "", None, 1),
    # a semi-supervised model's (M2's) classifier q(y|x): the share of test images its argmax gets wrong
    Metric("test_class_error", "test classification error of q(y|x)", "class err.", "%", "lower", 2),
    # the families' own numbers (None where they do not apply); their estimators are recorded beside them
    Metric("total_correlation", "total correlation of q(z)", "TC", "nats", "lower", 2),
    Metric("posterior_prior_mmd", "MMD^2 between q(z) and p(z)", "MMD^2", "", "lower", 4),
    Metric("sample_fid", "classifier FID of samples", "FID", "", "lower", 2),
    Metric("fid_classifier_accuracy", "FID classifier's test accuracy", "FID clf. acc.", "%", None, 1),
    Metric("train_images_per_second", "training throughput", "images/s", "images/s", "higher", 0),
    Metric("train_seconds", "training time", "train s", "s", "lower", 0),
)
METRIC = {metric.key: metric for metric in METRICS}


def format_phases(phase_seconds: dict[str, float]) -> str:
    """Each phase's seconds on one line, as the console and the report show them ("" for none)."""
    return ", ".join(f"{phase.replace('_', ' ')} {seconds:.1f}" for phase, seconds in phase_seconds.items())


@dataclass(frozen=True)
class TestMetrics:
    """Every test-set number of a trained model (per image, nats, beta = 1), from evaluate_all."""

    test_neg_elbo: float
    test_recon_nll: float
    test_kl: float
    kl_estimate: str  # closed-form | closed-form per layer | monte-carlo (vaezoo.model.kl_estimate.KLEstimate)
    test_nll_iw: float
    test_nll_iw_stderr: float
    iw_samples: int
    iw_seconds: float
    elbo_is_gap: float
    test_bits_per_dim: float | None  # a code length only for a probability mass
    active_units: int
    active_mask: list[bool]
    kl_per_dim: list[float]
    mutual_information: float
    mutual_information_max: float
    mutual_information_estimator: str
    probe_accuracy: float
    #: a hierarchy's test KL of each layer (closed form, against the prior's conditional) and its active
    #: units (Cov_x E_q[z_d] > 0.01), bottom layer first; None for a flat latent
    layer_kl: list[float] | None = None
    layer_active_units: list[int] | None = None
    #: what the test ELBO and NLL are of: "p(x)", or "p(x|y)" for a conditional model given each test
    #: image's label (`model.classes`), a number never to be ranked against an unconditional -log p(x)
    likelihood_of: Literal["p(x)", "p(x|y)"] = "p(x)"
    #: a semi-supervised model's (M2's, `model.classifier`) test error of argmax q(y|x), a fraction;
    #: None for the other models (they have no classifier) and in runs made before it
    test_class_error: float | None = None
    #: the families' numbers (evaluate/family.py), None where they do not apply or were not asked for
    #: (eval.family_metrics, eval.fid_samples) and in runs made before them
    total_correlation: float | None = None  # KL(q(z) || prod_d q(z_d)), nats, a diagonal Gaussian code's
    total_correlation_estimator: str | None = None
    posterior_prior_mmd: float | None = None  # unbiased MMD^2 between q(z) and p(z)
    mmd_estimator: str | None = None
    sample_fid: float | None = None  # classifier FID of fid_samples samples against the test split
    fid_samples: int | None = None
    fid_classifier_accuracy: float | None = None  # the FID classifier's own test accuracy
    #: a codebook latent's (VQ-VAE's) exp of the entropy of its codes' average use over the test images
    #: and code positions; None for other latents and in runs made before it
    code_perplexity: float | None = None
    #: what the NLL is where it is not an importance-weighted estimate of -log p(x) (`Posterior.nll_note`:
    #: a VQ-VAE's upper bound at the encoder's codes); None for the others
    nll_note: str | None = None


@dataclass(frozen=True)
class RunMetrics(TestMetrics):
    """A finished run's metrics.json: its test numbers, what they are, and what training cost."""

    #: what the NLL is (a mass, a density or neither): numbers of different kinds never compare; required
    #: (keyword-only, as the fields before it have defaults), as every metrics.json has said it
    nll_kind: NLLKind = field(kw_only=True)
    discrete: bool = True  # whether the NLL is a probability mass (bits/dim and ranking across runs need it)
    binarize: str = ""
    split: str = ""
    epochs: int = 0
    params: int = 0
    train_seconds: float = 0.0
    train_images_per_second: float = 0.0
    device: str = ""
    #: seconds of each phase: train, validation, test_elbo, importance_sampling, latent_statistics, probe,
    #: figures, report
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """metrics.json's content: plain JSON data, the NLL kind as its text."""
        return dataclasses.asdict(self) | {"nll_kind": self.nll_kind.value}

    @classmethod
    def from_json(cls, data: Any, source: str) -> RunMetrics:
        """The record a metrics.json holds, every field checked; OutputError naming the file when it does not fit."""
        return io.record(cls, data, source)

    def value(self, key: str) -> Any:
        """A metric by its table key (for tables built from METRICS)."""
        return getattr(self, key)


@dataclass(frozen=True)
class HistoryRow:
    """One epoch of training, as history.jsonl and the checkpoint hold it (nats per image)."""

    epoch: int
    step: int
    train_loss: float
    train_recon: float
    train_kl: float
    beta: float
    seconds: float
    images_per_second: float
    lr: float | None = None  # None in runs made before learning-rate schedules
    val_neg_elbo: float | None = None
    val_recon: float | None = None
    val_kl: float | None = None
    val_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: str) -> HistoryRow:
        """The row a history line holds, every field checked; OutputError naming the file when it does not fit."""
        return io.record(cls, data, source)


def finished_metrics(run_dir: Path) -> RunMetrics:
    """metrics.json of a finished run; OutputError if the run has not finished or the file is damaged."""
    path = run_dir / "metrics.json"
    if not path.exists():
        raise OutputError(f"{run_dir} has no metrics.json: the run has not finished (run it, or --resume it)")
    return RunMetrics.from_json(io.read_json(path), str(path))


def read_history(run_dir: Path) -> list[HistoryRow]:
    """history.jsonl of a run as typed rows; OutputError when it is damaged."""
    path = run_dir / "history.jsonl"
    return [HistoryRow.from_json(row, str(path)) for row in io.read_jsonl(path)]
