"""Sweep specs: a base spec plus only the changes (grid, variants, seeds), expanded into validated points."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import StrictModel
from vaezoo.evaluate.records import METRICS
from vaezoo.spec.experiment import (
    NAME,
    ExperimentSpec,
    apply_overrides,
    describe,
    read_mapping,
    read_spec_data,
    set_dotted,
    validate,
)


class VariantSpec(StrictModel):
    name: str = Field(pattern=NAME, max_length=60)
    set: dict[str, Any] = Field(default_factory=dict, description="dotted key -> value, applied to the base")


class ResourcesSpec(StrictModel):
    """What each point asks of a Ray cluster (`--executor ray`); the local executor shares its cores."""

    cpus: float = Field(default=1, gt=0, le=1024, description="CPUs a point reserves (Ray's num_cpus); its threads")
    gpus: float = Field(default=1, ge=0, le=64, description="GPUs a point whose train.device is cuda reserves")
    retries: int = Field(default=3, ge=0, le=100, description="times Ray reruns a point whose worker or node died")


class SweepSpec(StrictModel):
    """`base` (a spec file, relative to the sweep file, or an inline spec) plus the changes."""

    name: str = Field(pattern=NAME, max_length=120)
    base: str | dict[str, Any]
    set: dict[str, Any] = Field(default_factory=dict, description="changes applied to every point")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values (Cartesian product)")
    variants: list[VariantSpec] = Field(default_factory=list)
    seeds: list[int] | None = Field(default=None, min_length=1)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    headline: str = Field(
        default="test_nll_iw", description="the metric that sorts the table (a key of the metric table)"
    )
    report: Literal["comparison", "assignment"] = Field(
        default="comparison",
        description="what the sweep's report is: a comparison of its points, or the assignment's hand-in "
        "(experiments/assignment.yaml: its 20-d, 2-d and beta runs in one two-page report)",
    )

    @field_validator("headline")
    @classmethod
    def _known_metric(cls, key: str) -> str:
        ranked = [m.key for m in METRICS if m.better is not None]
        if key not in ranked:
            raise ValueError(f"unknown headline metric {key!r}; one of: {', '.join(ranked)}")
        return key

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key {key} has no values")
        return grid

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        return variants


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its folder name, what varies in it, and its validated spec."""

    name: str
    varied: dict[str, Any]
    spec: ExperimentSpec


#: The keys only a sweep's spec has: an experiment's spec may also name a `base` and `set` changes on it.
SWEEP_ONLY = frozenset({"grid", "variants", "seeds", "resources", "headline", "report"})


def is_sweep_file(path: Path) -> bool:
    """True when the YAML file at `path` is a sweep's spec (it has a key that only a sweep has), so that
    `vaezoo run` of a sweep's name runs the sweep."""
    return bool(SWEEP_ONLY & read_mapping(path).keys())


def load_sweep(path: Path, overrides: list[str] | None = None) -> tuple[SweepSpec, list[Point]]:
    """Read a sweep file and expand it; every point is validated before anything runs."""
    data = read_mapping(path)
    try:
        sweep = SweepSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{path}: {describe(error, data)}") from None
    base = sweep.base if isinstance(sweep.base, dict) else read_spec_data(path.parent / sweep.base)
    return sweep, expand(sweep, base, overrides or [], str(path))


#: the most points one sweep may have (each is a run folder; more is almost surely a mistake in the grid)
MAX_POINTS = 10000


def expand(sweep: SweepSpec, base: dict[str, Any], overrides: list[str], source: str) -> list[Point]:
    """Cartesian product of the grid, times the variants, times the seeds; names unique and safe."""
    keys = list(sweep.grid)
    variants = sweep.variants or [None]
    seeds = sweep.seeds or [None]
    count = math.prod(len(values) for values in sweep.grid.values()) * len(variants) * len(seeds)
    if count > MAX_POINTS:  # before the product is built: 10^8 points would fill the memory first
        raise SpecError(f"{source}: the sweep has {count} points, more than {MAX_POINTS}; split it into smaller sweeps")
    combos = list(itertools.product(*(sweep.grid[k] for k in keys)))
    raw = []
    for variant, combo, seed in itertools.product(variants, combos, seeds):
        varied: dict[str, Any] = {}
        if variant is not None:
            varied["variant"] = variant.name
        varied |= dict(zip(keys, combo))
        if seed is not None:
            varied["seed"] = seed
        raw.append((variant, combo, seed, varied))
    names = point_names([varied for *_, varied in raw])
    points = []
    for (variant, combo, seed, varied), name in zip(raw, names):
        data = dict(base)
        for changes in (sweep.set, variant.set if variant else {}, dict(zip(keys, combo))):
            data = _with(data, changes)
        if seed is not None:
            data = _with(data, {"seed": seed})
        data = apply_overrides(_with(data, {"name": name}), overrides)
        points.append(Point(name=name, varied=varied, spec=validate(data, f"{source}, point {name}")))
    _refuse_duplicates(points, source)
    return points


def _refuse_duplicates(points: list[Point], source: str) -> None:
    """Two points that validate to the same spec (their names aside) would train one run twice:
    `seeds: [0, 0]`, grid values 1 and 1.0, two variants that set the same, a grid value a variant sets."""
    seen: dict[str, Point] = {}
    for point in points:
        key = json.dumps(point.spec.model_dump(mode="json", exclude={"name"}), sort_keys=True)
        first = seen.setdefault(key, point)
        if first is not point:
            raise SpecError(
                f"{source}: points {first.name} and {point.name} are the same run (their specs differ only in "
                "name); drop one of the values that produce them"
            )


def _with(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(data)
    for key, value in changes.items():
        set_dotted(result, key, value)
    return result


def point_names(points: list[dict[str, Any]]) -> list[str]:
    """Readable, filesystem-safe, unique folder names from the varied keys (short keys where unambiguous)."""
    if not points or not points[0]:
        return ["run"] * len(points)
    keys = list(points[0])
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(keys):
        short = {k: k for k in keys}
    names = ["_".join(_part(short[k], k, p[k]) for k in keys) for p in points]
    if len(set(names)) < len(names):  # values that differ only in unsafe characters
        names = [f"{i:03d}_{name}" for i, name in enumerate(names)]
    return names


def _part(label: str, key: str, value: Any) -> str:
    text = value if key == "variant" else f"{label}={_value_text(value)}"
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", str(text)).strip("-")[:60] or "x"


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(_value_text(v) for v in value.values())
    if isinstance(value, list):
        return "x".join(_value_text(v) for v in value)
    return str(value)
