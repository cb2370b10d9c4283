"""A sweep folder's saved results, read back for its report: sweep.json and each run's metrics.json,
every file checked, so that a damaged one is one OutputError naming it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.evaluate.records import finished_metrics
from vaezoo.spec.slots import NAME


@dataclass(frozen=True)
class SweepManifest:
    """sweep.json: the sweep's name, its headline metric and its points (run folder, varied keys)."""

    name: str
    headline: str
    points: list[tuple[str, dict[str, Any]]]


def read_sweep(sweep_dir: Path) -> tuple[str, str, list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """write_sweep_report's inputs, read from a finished sweep folder: (name, headline, points, results).
    OutputError naming the file that is missing or damaged, or the first run that has not finished."""
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
    results = [finished_metrics(sweep_dir / name).to_json() for name, _ in manifest.points]
    return manifest.name, manifest.headline, manifest.points, results
