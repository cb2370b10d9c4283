"""A run's report as data: its spec table, metric table, observations and figure list, computed from
the typed records (ExperimentSpec, RunMetrics, HistoryRow), apart from the writers that format them
(report: Markdown and HTML; run_pdf: typst).

Those records may come from someone else's run folder: every value they hold is written through
escape.markdown here, so each cell and note is Markdown that the writers may read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaezoo.evaluate.records import METRICS, HistoryRow, RunMetrics, format_phases
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.figures import FIGURES
from vaezoo.spec.build import latent_layout
from vaezoo.spec.experiment import ExperimentSpec


@dataclass(frozen=True)
class RunTables:
    """Everything a run's report shows, computed once: each writer only formats it."""

    spec: ExperimentSpec
    metrics: RunMetrics
    history: list[HistoryRow]
    figures: list[str]  # the kinds in FIGURES whose PNG exists under the run's figures/
    spec_rows: list[tuple[str, str]]
    metric_rows: list[tuple[str, str]]
    notes: list[str]


def run_tables(run_dir: Path, spec: ExperimentSpec, metrics: RunMetrics, history: list[HistoryRow]) -> RunTables:
    """The report of the run in `run_dir`, from its spec, metrics and history; a figure whose file is
    absent is left out."""
    figures = [name for name, kind in FIGURES.items() if (run_dir / "figures" / kind.file_name).exists()]
    return tables_for(spec, metrics, history, figures)


def tables_for(spec: ExperimentSpec, metrics: RunMetrics, history: list[HistoryRow], figures: list[str]) -> RunTables:
    """The report of a run whose drawn figures are `figures`."""
    return RunTables(
        spec, metrics, history, figures, spec_summary(spec), metrics_rows(metrics), observations(metrics, history, spec)
    )


def spec_summary(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """The spec in brief: one row per part, each with its settings."""
    m = spec.model

    def part(component: Any) -> str:
        settings = ", ".join(f"{md(k)}={md(v)}" for k, v in component.fields().items())
        return md_code(component.kind) + (f" ({settings})" if settings else "")

    return [
        (
            "data",
            f"{md(spec.data.dataset)}, binarize {md_code(spec.data.binarize)}, {spec.data.val_size} validation images",
        ),
        ("latent dimensions", str(m.latent_dim)),
        ("encoder", part(m.encoder)),
        ("posterior", part(m.posterior)),
        ("prior", part(m.prior)),
        ("decoder", part(m.decoder)),
        ("likelihood", part(m.likelihood)),
        ("KL weighting", part(spec.kl)),
        ("objective", part(spec.objective)),
        (
            "training",
            (
                f"{spec.train.epochs} epochs, batch {spec.train.batch_size}, Adam lr {spec.train.lr:g} "
                f"({md(spec.train.lr_schedule)}), seed {spec.seed}"
            ),
        ),
    ]


def metrics_rows(metrics: RunMetrics) -> list[tuple[str, str]]:
    """Every number of the metric table with its unit (bits/dim only for a probability mass), then
    what the numbers are and what the run cost; each row two Markdown cells."""
    rows = []
    for metric in METRICS:  # the one table of metrics decides which fields, labels and digits
        value = getattr(metrics, metric.key)
        if metric.kind == "mass-only" and value is None:
            continue
        text = metric.format(value)
        if metric.key == "test_nll_iw":
            text += f" ± {metric.format(metrics.test_nll_iw_stderr)} (K = {metrics.iw_samples})"
            if metrics.likelihood_of != "p(x)":  # a conditional model's: not comparable with an unconditional -log p(x)
                text += f", of {md(metrics.likelihood_of)}: given each image's label"
            if metrics.nll_note is not None:
                text += f"; {md(metrics.nll_note)}"
        elif metric.key == "active_units":
            text += f" of {len(metrics.kl_per_dim)} (Cov_x E_q[z_d] > 0.01)"
        elif metric.key == "test_kl":
            text += f" ({md(metrics.kl_estimate)})"
            if metrics.test_class_error is not None:  # a latent label's KL is in the rate too
                text += md(", plus KL(q(y|x) || p(y)) of the latent label")
        rows.append((md(metric.heading()), text))
    if metrics.layer_kl is not None:
        layers = zip(metrics.layer_kl, metrics.layer_active_units or [], strict=True)
        text = "; ".join(f"{kl:.2f} nats, {active} active" for kl, active in layers)
        rows.append(("KL and active units per layer, bottom first", text))
    return rows + [
        (
            "what the NLL is",
            f"{md(metrics.nll_kind)}, of {md(metrics.likelihood_of)}"
            + (f"; {md(metrics.nll_note)}" if metrics.nll_note is not None else ""),
        ),
        ("split", md(metrics.split)),
        ("parameters", f"{metrics.params:,}"),
        ("device", md(metrics.device)),
        ("seconds per phase", md(format_phases(metrics.phase_seconds)) or "—"),
    ]


def observations(metrics: RunMetrics, history: list[HistoryRow], spec: ExperimentSpec) -> list[str]:
    """Findings computed from this run's numbers (and, for what they cover, its prior)."""
    code_note = latent_layout(spec.model).code_note
    # a conditional (p(x|y)) or semi-supervised (q(y|x)) model's encoder reads labels
    labelled = metrics.likelihood_of != "p(x)" or metrics.test_class_error is not None
    kl = metrics.kl_per_dim
    total = sum(kl) or 1.0
    order = sorted(range(len(kl)), key=lambda d: -kl[d])
    top = order[: max(1, min(3, len(kl)))]
    collapsed = [d for d in range(len(kl)) if kl[d] < 0.01]
    notes = [
        (
            f"The ELBO is {metrics.elbo_is_gap:.2f} nats looser than the K = {metrics.iw_samples} importance-weighted "
            f"estimate ({metrics.test_neg_elbo:.2f} vs {metrics.test_nll_iw:.2f}): about that much of the bound is "
            "the posterior approximation's gap KL(q(z|x) || p(z|x)), not the model."
            if metrics.nll_note is None
            else f"The test NLL, {metrics.test_nll_iw:.2f}, is {md(metrics.nll_note)}."
        ),
        f"{metrics.active_units} of {len(kl)} latent dimensions are active; dimensions "
        + ", ".join(f"z{d + 1} ({kl[d]:.2f} nats)" for d in top)
        + f" carry {100 * sum(kl[d] for d in top) / total:.0f} % of the {sum(kl):.2f} nats of KL.",
        (
            f"{len(collapsed)} dimensions carry under 0.01 nats each: they have collapsed to the prior."
            if collapsed
            else "No dimension has collapsed to the prior (every one carries at least 0.01 nats)."
        ),
        mutual_information_note(metrics, decompose=code_note is None),
        f"A linear classifier on the posterior means reaches {100 * metrics.probe_accuracy:.1f} % test accuracy "
        + (
            "(chance is 10 %): the labels are that linearly readable from z without ever being trained on."
            if not labelled
            else "(chance is 10 %); the encoder q(z|x, y) read each image's true label beside it, so this is not "
            "what z learned of the labels unsupervised."
        ),
    ]
    if code_note is not None:
        notes.insert(1, f"The latent dimensions counted here are the code's: {md(code_note)}.")
    notes += training_observations(history)
    if not metrics.nll_kind.is_likelihood:
        notes.append(
            "The data are grey levels under a Bernoulli likelihood: these numbers are BCE, not log-likelihoods."
        )
    return notes


def information_sentence(metrics: RunMetrics) -> str:
    """What the MI estimate says about the rate, as one sentence (Markdown with $TeX$).

    The rate is R = I(x; z) + KL(q(z) || p(z)). The estimate over the N test images, with their
    aggregate posterior as q(z), is a lower bound on I(x; z) (the InfoNCE form) that cannot exceed
    log N; so it bounds the information from below and the mismatch R - I from above.
    """
    mi, rate, ceiling = metrics.mutual_information, metrics.test_kl, metrics.mutual_information_max
    text = (
        f"Of the rate of {rate:.2f} nats, at least {mi:.2f} nats are information $I(x;z)$ about the image (the "
        f"estimate over the N test images is a lower bound on it, and at most log N = {ceiling:.2f}), so at most "
        f"{max(rate - mi, 0.0):.2f} nats are the mismatch $\\mathrm{{KL}}(q(z)\\Vert p(z))$ between the aggregate "
        "posterior and the prior."
    )
    if mi > 0.95 * ceiling:
        text += (
            " The estimate sits at its log N ceiling, so the true information may be larger and the mismatch smaller."
        )
    return text


def mutual_information_note(metrics: RunMetrics, decompose: bool = True) -> str:
    """Rate = I(x; z) + KL(q(z) || p(z)): what the estimate bounds (see information_sentence).

    Without `decompose` (the estimate covers part of the latent, the rate all of it) only I is given.
    """
    if decompose:
        return information_sentence(metrics)
    return (
        f"The estimated I(x; z) of the code is at least {metrics.mutual_information:.2f} nats (a lower bound, at "
        f"most log N = {metrics.mutual_information_max:.2f}); the rate, {metrics.test_kl:.2f} nats, covers every layer."
    )


def training_observations(history: list[HistoryRow]) -> list[str]:
    """How training ended: still improving or flat, and the train/validation gap."""
    if len(history) < 2 or history[-1].val_neg_elbo is None or history[-2].val_neg_elbo is None:
        return []
    last, previous = history[-1], history[-2]
    change = last.val_neg_elbo - previous.val_neg_elbo
    trend = "still improving" if change < -0.1 else ("getting worse (overfitting)" if change > 0.1 else "flat")
    return [
        (
            f"Validation -ELBO moved {change:+.2f} nats in the last epoch ({trend}); "
            f"train loss {last.train_loss:.2f} vs validation -ELBO {last.val_neg_elbo:.2f} "
            f"at beta = {last.beta:.2f}."
        )
    ]
