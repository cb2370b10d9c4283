"""A sweep's observations, computed from its rows (SweepEntry): which setting wins on each metric of
the one METRICS table and whether the seed spread makes it real, and how the numbers move along a
single varied key. NLL-based numbers are ranked only among runs whose NLL is of the same kind."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from vaezoo.evaluate.records import METRIC, Metric
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.sweep_entries import SWEEP_METRICS, SweepEntry, comparable, nll_kinds, point_label
from vaezoo.parts.likelihoods import NLLKind

#: metrics whose differences are the machine's noise, never the setting's: no winner is named for them
UNRANKED = ("train_seconds", "train_images_per_second")
#: a difference smaller than this share of the value is a tie, whatever its error bar
TIE_SHARE = 0.005
#: the paired standard error of best minus second on a metric, where per-image values exist (else None)
PairedSE = Callable[[SweepEntry, SweepEntry, Metric], "float | None"]

#: the metrics whose course along a single varied key the observations describe
TRENDS = ("test_recon_nll", "test_kl", "test_nll_iw", "active_units")


def sweep_observations(
    entries: list[SweepEntry], keys: list[str], headline: str, paired_se: PairedSE | None = None
) -> list[str]:
    """Which setting wins on each metric, by how much, and whether the seed spread makes it real;
    with one numeric key varied, how the rate and distortion move along it (each note Markdown)."""
    if len(entries) < 2:
        return ["Only one point: nothing to compare."]
    kinds = nll_kinds(entries)
    notes = []
    if len(kinds) > 1:
        notes.append(
            "These runs' NLLs are of different kinds ("
            + "; ".join(map(md, kinds))
            + "): NLL-based numbers are compared "
            "only within a kind, never across."
        )
    ranked_metrics = [m for m in SWEEP_METRICS if m.better is not None and m.key not in UNRANKED]
    for metric in sorted(ranked_metrics, key=lambda m: m.key != headline):
        groups: list[tuple[NLLKind | None, list[SweepEntry]]] = (
            [(None, entries)] if comparable(metric) else [(k, [e for e in entries if e.nll_kind == k]) for k in kinds]
        )
        for kind, members in groups:
            note = _winner(metric, members, keys, kind if len(kinds) > 1 else None, paired_se)
            if note:
                notes.append(note)
    notes += _trend_notes(entries, keys)
    if all(e.n < 2 for e in entries):
        notes.append(
            "One seed per point: these differences carry no seed-to-seed error bars (add `seeds:` to the sweep to get them)."
        )
    return notes


def _value(metric: Metric, value: float) -> str:
    """A value in an observation: a percentage as one (the probe's 0.874 is 87.4 %), else 4 digits."""
    return metric.format(value) if metric.unit == "%" else f"{value:.4g}"


def _gap(metric: Metric, gap: float) -> str:
    """A difference in an observation: between percentages, in percentage points."""
    return f"{100 * gap:.{metric.digits}f} percentage points" if metric.unit == "%" else f"{gap:.3g}"


def _winner(
    metric: Metric, entries: list[SweepEntry], keys: list[str], kind: NLLKind | None, paired_se: PairedSE | None
) -> str | None:
    """The best of `entries` on `metric` where its lead exceeds its noise (twice the paired standard error
    over test images, or of the seeds' spread), and no winner inside it. Where there is no error bar, a lead
    under TIE_SHARE of the value is a tie and a larger one names the best without calling it a win. The
    share never overrules an error bar: a paired 0.15 +- 0.02 nats is a real lead at 107 nats."""
    present = [e for e in entries if isinstance(e.value(metric), (int, float))]
    if len(present) < 2:
        return None
    ranked = sorted(present, key=lambda e: e.value(metric), reverse=metric.better == "higher")
    best, second = ranked[0], ranked[1]
    value, gap = best.value(metric), abs(best.value(metric) - second.value(metric))
    within = f" among runs whose NLL is a {md(kind)}" if kind else ""
    name = f"**{metric.label}** ({metric.better} is better{within})"
    pair = f"{point_label(best, keys)} and {point_label(second, keys)}"
    se = paired_se(best, second, metric) if paired_se else None
    source = "paired over test images"
    if se is None and best.n >= 2 and second.n >= 2 and metric.key in best.std and metric.key in second.std:
        se = (best.std[metric.key] ** 2 / best.n + second.std[metric.key] ** 2 / second.n) ** 0.5
        source = "across seeds"
    if se is None and gap <= TIE_SHARE * abs(value):
        return f"{name}: {pair} tie (they differ by {_gap(metric, gap)}, under {100 * TIE_SHARE:g} % of the value)."
    if se is None:
        return (
            f"{name}: {point_label(best, keys)} has the best value, {_value(metric, value)}, {_gap(metric, gap)} ahead of "
            f"{point_label(second, keys)} (one seed and no per-image values: no error bar, so not a win)."
        )
    if gap <= 2 * se:
        return f"{name}: {pair} differ by {_gap(metric, gap)}, within twice its standard error {source} ({_gap(metric, 2 * se)}): no winner."
    return (
        f"{name}: {point_label(best, keys)} wins with {_value(metric, value)}, ahead of {point_label(second, keys)} by "
        f"{_gap(metric, gap)}, more than twice its standard error {source} ({_gap(metric, 2 * se)})."
    )


def _trend_notes(entries: list[SweepEntry], keys: list[str]) -> list[str]:
    """Along a single numeric varied key: each metric's values from its smallest to its largest setting."""
    varied = [k for k in keys if k != "seed"]
    if len(varied) != 1 or not all(isinstance(e.cells.get(varied[0]), (int, float)) for e in entries):
        return []
    key = varied[0]
    ordered = sorted(entries, key=lambda e: e.cells[key])
    notes = []
    for metric in map(METRIC.__getitem__, TRENDS):
        values = [e.value(metric) for e in ordered]
        if any(not isinstance(v, (int, float)) for v in values):
            continue
        steps = [b - a for a, b in itertools.pairwise(values)]
        shape = (
            "rises steadily"
            if all(d > 0 for d in steps)
            else "falls steadily"
            if all(d < 0 for d in steps)
            else "never falls"
            if all(d >= 0 for d in steps)
            else "never rises"
            if all(d <= 0 for d in steps)
            else "is not monotonic"
        )
        notes.append(
            f"As {md(key)} goes from {md(ordered[0].cells[key])} to {md(ordered[-1].cells[key])}, {metric.label} "
            f"{shape}: " + ", ".join(f"{v:.4g}" for v in values) + "."
        )
    return notes
