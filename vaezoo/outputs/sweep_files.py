"""A sweep folder's saved results, read back for its report as one typed `SweepSummary`: sweep.json
and each run's metrics.json, history.jsonl and spec.yaml, every file checked, so that a damaged one
is one OutputError naming it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vaezoo.core import io
from vaezoo.core.errors import OutputError, VaezooError
from vaezoo.evaluate.records import HistoryRow, RunMetrics, finished_metrics, read_history
from vaezoo.spec.experiment import ExperimentSpec, load_spec
from vaezoo.spec.slots import NAME


@dataclass(frozen=True)
class SweepManifest:
    """sweep.json: the sweep's name, its headline metric and its points (run folder, varied keys)."""

    name: str
    headline: str
    points: list[tuple[str, dict[str, Any]]]
    #: the sweep spec's `report`; a sweep.json written before there was a choice holds a comparison
    report: Literal["comparison", "assignment"] = "comparison"


@dataclass(frozen=True)
class SweepPoint:
    """One finished point of a sweep: its run folder's name, what it varied, and what the run saved."""

    name: str
    varied: dict[str, Any]  # dotted spec key (or "seed", "variant") -> its value at this point
    metrics: RunMetrics
    history: list[HistoryRow]
    #: None where the saved spec does not load here (a dataset or part this process has not registered)
    spec: ExperimentSpec | None


@dataclass(frozen=True)
class SweepSummary:
    """A finished sweep as its report reads it: sweep.json's name and headline, and every point."""

    name: str
    headline: str  # the metric key the results are sorted by
    points: list[SweepPoint]
    report: str = "comparison"  # what the report is (SweepSpec.report)

    @property
    def keys(self) -> list[str]:
        """The varied keys, in sweep.json's order (every point varies the same ones)."""
        return list(self.points[0].varied) if self.points else []

    @property
    def pairs(self) -> list[tuple[str, dict[str, Any]]]:
        """(run folder, varied keys) of every point, in order."""
        return [(point.name, point.varied) for point in self.points]


def read_sweep(sweep_dir: Path) -> SweepSummary:
    """The finished sweep in `sweep_dir`. OutputError naming the file that is missing or damaged, or
    the first run that has not finished."""
    path = sweep_dir / "sweep.json"
    manifest = io.record(SweepManifest, io.read_json(path), str(path))
    for name, _ in manifest.points:
        if not re.fullmatch(NAME, name):  # it is joined to sweep_dir: never a path out of it
            raise OutputError(f"{path} is damaged: {name!r} is not a run folder's name")
    missing = [name for name, _ in manifest.points if not (sweep_dir / name / "metrics.json").exists()]
    if missing:
        raise OutputError(
            f"sweep {sweep_dir} is not finished: {len(missing)} runs have no metrics.json (e.g. {missing[0]})"
        )
    metrics = [finished_metrics(sweep_dir / name) for name, _ in manifest.points]
    points = [
        SweepPoint(name, varied, run_metrics, read_history(sweep_dir / name), _saved_spec(sweep_dir / name))
        for (name, varied), run_metrics in zip(manifest.points, metrics)
    ]
    return SweepSummary(manifest.name, manifest.headline, points, manifest.report)


def _saved_spec(run_dir: Path) -> ExperimentSpec | None:
    try:
        return load_spec(run_dir / "spec.yaml")
    except VaezooError:
        return None  # the report says less about the shared model, and nothing else changes
