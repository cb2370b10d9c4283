"""A sweep's report as data, computed from its `SweepSummary` apart from the writers that format it
(sweep_report: csv, Markdown and HTML; sweep_pdf: typst): its rows (mean ± std over seeds), the
results table, the observations (sweep_observations) and the paired differences (paired).

Point names, varied keys and values and the runs' metrics may come from someone else: each is written
through escape.markdown here (table cells, labels and notes are Markdown, which the writers read back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaezoo.evaluate.records import METRIC, Metric
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.paired import PairedDifference, paired_differences, paired_stderr
from vaezoo.outputs.sweep_entries import SWEEP_METRICS, SweepEntry, cell, comparable, grouped, nll_kinds, single
from vaezoo.outputs.sweep_files import SweepSummary
from vaezoo.outputs.sweep_observations import sweep_observations
from vaezoo.parts.likelihoods import NLLKind


@dataclass(frozen=True)
class SweepTables:
    """Everything a sweep's report shows, computed once: each writer only formats it."""

    summary: SweepSummary
    keys: list[str]  # the table's varied columns (the seed averaged away; "run" where nothing else varies)
    entries: list[SweepEntry]
    varied: dict[str, list[str]]  # each varied key's values, as JSON text
    caption: str  # the results table's, Markdown
    header: list[str]  # the results table's, Markdown cells
    rows: list[list[str]]
    notes: list[str]  # the observations, Markdown
    paired: list[PairedDifference] | None  # against the first point; None without per-image NLLs


def sweep_tables(summary: SweepSummary, sweep_dir: Path) -> SweepTables:
    """The report of a finished sweep (`sweep_dir` holds the runs' per-image NLLs, for paired differences)."""
    keys = summary.keys
    seeded = "seed" in keys
    entries = grouped(summary.points) if seeded else [single(point) for point in summary.points]
    shown = ([k for k in keys if k != "seed"] if seeded else keys) or ["run"]
    header, rows = sweep_rows(entries, shown, summary.headline)
    metrics = [point.metrics for point in summary.points]
    caption = (
        f"{md(summary.name)}: test set, per image, nats summed over pixels and latents (beta = 1); "
        f"IS with K = {', '.join(map(md, sorted({m.iw_samples for m in metrics})))}; binarize "
        f"{', '.join(md(b) for b in sorted({m.binarize for m in metrics}))}"
        + ("; mean ± std over seeds" if seeded else "")
    )
    varied = {k: sorted({json.dumps(point.varied[k]) for point in summary.points}) for k in keys}
    notes = sweep_observations(entries, shown, summary.headline, lambda a, b, m: paired_stderr(sweep_dir, a, b, m))
    paired = paired_differences(summary.pairs, sweep_dir)
    return SweepTables(summary, shown, entries, varied, caption, header, rows, notes, paired)


def columns(entries: list[SweepEntry]) -> list[tuple[Metric, NLLKind | None]]:
    """(metric, the NLL kind its column is restricted to): an NLL metric gets a column per kind."""
    kinds = nll_kinds(entries)
    out: list[tuple[Metric, NLLKind | None]] = []
    for metric in SWEEP_METRICS:
        split = not comparable(metric) and len(kinds) > 1
        out += [(metric, kind) for kind in kinds] if split else [(metric, None)]
    return out


def column_label(metric: Metric, kind: NLLKind | None) -> str:
    """A column's heading (Markdown): the metric's, and the NLL kind where the column holds one kind."""
    return md(metric.short) if kind is None else f"{md(metric.short)} [{md(kind)}]"


def _sort_key(entry: SweepEntry, headline: str, kinds: list[NLLKind]) -> tuple[int, float]:
    metric = METRIC.get(headline)  # sweep.json may come from anyone: an unknown headline sorts nothing
    value = entry.value(metric) if metric is not None else None
    sign = -1 if metric is not None and metric.better == "higher" else 1
    return kinds.index(entry.nll_kind), sign * value if isinstance(value, (int, float)) else float("inf")


def sweep_rows(entries: list[SweepEntry], keys: list[str], headline: str) -> tuple[list[str], list[list[str]]]:
    """The results table's header and rows (Markdown cells), sorted by the headline metric (lower first,
    unless higher is better), with the KL estimator each row trained with, and a hierarchy's KL per layer.

    With runs of several NLL kinds, each NLL metric gets one column per kind and the rows are
    grouped by kind first: a Bernoulli mass is never ranked against a Gaussian density.
    """
    kinds = nll_kinds(entries)
    ordered = sorted(entries, key=lambda e: _sort_key(e, headline, kinds))
    shown = columns(entries)
    layered = any(entry.metrics.layer_kl is not None for entry in entries)
    header = [md(k) for k in keys] + ["KL estimate"] + [column_label(metric, kind) for metric, kind in shown]
    header += ["KL per layer, bottom first"] if layered else []
    rows = []
    for entry in ordered:
        cells = [md(entry.cells[k]) for k in keys] + [md(entry.metrics.kl_estimate or "—")]
        for metric, kind in shown:
            value = entry.value(metric) if kind is None or entry.nll_kind == kind else None
            text = metric.format(value)
            std = entry.std.get(metric.key)
            if value is not None and std and entry.n > 1:
                text += f" ± {metric.format(std)}"
            cells.append(text)
        if layered:
            layer_kl = entry.metrics.layer_kl
            cells.append("—" if layer_kl is None else " / ".join(f"{kl:.2f}" for kl in layer_kl))
        rows.append(cells)
    return header, rows


def csv_rows(summary: SweepSummary) -> list[dict[str, Any]]:
    """results.csv: one flat row per run, its name, every varied key and every scalar of metrics.json."""
    rows = []
    for point in summary.points:
        row: dict[str, Any] = {"run": point.name, **{k: cell(v) for k, v in point.varied.items()}}
        scalars = point.metrics.to_json().items()  # the whole record: a csv column per field
        row |= {k: v for k, v in scalars if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        if point.metrics.layer_kl is not None:
            row["layer_kl"] = cell(list(point.metrics.layer_kl))
        rows.append(row)
    return rows
