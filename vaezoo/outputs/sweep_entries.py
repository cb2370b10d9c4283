"""The rows of a sweep's table as typed records: one per point, or where seeds vary, one per point
with its seeds averaged (mean and std over seeds of every metric of the one METRICS table)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from vaezoo.evaluate.records import METRICS, Metric, RunMetrics
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.sweep_files import SweepPoint
from vaezoo.parts.likelihoods import NLLKind

#: the sweep table's columns, in the metric table's order (throughput is per machine, not per setting)
SWEEP_METRICS = tuple(metric for metric in METRICS if metric.key != "train_images_per_second")


@dataclass(frozen=True)
class SweepEntry:
    """One row of a sweep's table: a point, or where seeds vary, a point's seeds averaged."""

    #: "run" (the run folder, or its seeds' folders) and each varied key, as the table shows them
    cells: dict[str, Any]
    #: the run's metrics; for seeds, the first seed's with each metric of METRICS (and the KL per
    #: layer) replaced by its mean over the seeds
    metrics: RunMetrics
    n: int = 1  # how many seeds the row averages
    std: dict[str, float] = field(default_factory=dict)  # each averaged metric's std over seeds (ddof 1)

    @property
    def nll_kind(self) -> NLLKind:
        return self.metrics.nll_kind

    def value(self, metric: Metric) -> Any:
        """The row's value of a metric of the table (None where it does not apply)."""
        return getattr(self.metrics, metric.key)


def cell(value: Any) -> Any:
    """A varied value as one table or csv cell: a mapping or list as its JSON text."""
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def single(point: SweepPoint) -> SweepEntry:
    """A point's own row."""
    return SweepEntry({"run": point.name} | {k: cell(v) for k, v in point.varied.items()}, point.metrics)


def grouped(points: list[SweepPoint]) -> list[SweepEntry]:
    """Rows averaged over seeds: per point, the mean and std (ddof 1) of each metric, and n."""
    keys = [k for k in (points[0].varied if points else {}) if k != "seed"]
    groups: dict[tuple[Any, ...], list[SweepPoint]] = {}
    for point in points:
        groups.setdefault(tuple(cell(point.varied[k]) for k in keys), []).append(point)
    entries = []
    for members in groups.values():
        # "run" labels the group where nothing but the seed varies (its table has no other column)
        cells = {"run": ", ".join(m.name for m in members)} | {k: cell(members[0].varied[k]) for k in keys}
        means, std = {}, {}
        for metric in METRICS:
            values = [v for m in members if isinstance(v := getattr(m.metrics, metric.key), (int, float))]
            if values:
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                means[metric.key], std[metric.key] = mean, var**0.5
        layers = [m.metrics.layer_kl for m in members if m.metrics.layer_kl is not None]
        if layers:
            means["layer_kl"] = [sum(values) / len(values) for values in zip(*layers)]
        # seeds never change what the NLL is, nor which KL estimator the model uses: the first seed's say
        metrics = dataclasses.replace(members[0].metrics, **means)
        entries.append(SweepEntry(cells, metrics, len(members), std))
    return entries


def nll_kinds(entries: list[SweepEntry]) -> list[NLLKind]:
    """The kinds of NLL among the runs (a binary mass, an 8-bit mass, a density, BCE on grey levels)."""
    return sorted({entry.nll_kind for entry in entries}, key=lambda kind: kind.value)


def comparable(metric: Metric) -> bool:
    """Whether values of runs with different NLL kinds may stand in one column or one ranking."""
    return metric.kind == "other"


def point_label(entry: SweepEntry, keys: list[str]) -> str:
    """A point's varied values, as Markdown."""
    return ", ".join(
        f"{md(k)}={md(entry.cells[k])}" if k not in ("variant", "run") else md(entry.cells[k])
        for k in keys
        if k != "seed"
    )
