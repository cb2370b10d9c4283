"""Paired comparisons of a sweep's runs on the same test images.

Two models' mean test NLLs each carry a standard error of about 0.3 nats over 10,000 images, but
most of that spread is which images are hard, which both models share. The difference image by
image removes it: its standard error is what says whether two runs really differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaezoo.core import io

PER_IMAGE_NLL = "test_nll.pt"  # written by the runner beside metrics.json


@dataclass(frozen=True)
class PairedDifference:
    """test NLL of `point` minus the baseline's, averaged over images (and seeds), with its paired SE."""

    point: str
    difference: float
    stderr: float
    seeds: int

    @property
    def significant(self) -> bool:
        return abs(self.difference) > 2 * self.stderr


def paired_differences(points: list[tuple[str, dict[str, Any]]], sweep_dir: Path) -> list[PairedDifference] | None:
    """Each point against the sweep's first point (with the same seed), or None when a run has no
    per-image NLLs (made before they were saved) or the runs scored different test sets."""
    nll = {}
    for name, _ in points:
        path = sweep_dir / name / PER_IMAGE_NLL
        if not path.exists():
            return None
        with io.reading(path):  # a damaged file is one OutputError naming it
            nll[name] = io.load_torch(path, torch.device("cpu")).double().reshape(-1)
    if len({len(v) for v in nll.values()}) != 1:
        return None
    by_config: dict[str, dict[Any, str]] = {}
    labels = {name: config_label(name, varied) for name, varied in points}
    for name, varied in points:
        config = repr(sorted((k, repr(v)) for k, v in varied.items() if k != "seed"))
        by_config.setdefault(config, {})[varied.get("seed")] = name
    configs = list(by_config.values())
    baseline = configs[0]
    results = []
    for runs in configs[1:]:
        seeds = [seed for seed in runs if seed in baseline]
        if not seeds:
            continue
        diffs = torch.stack([nll[runs[s]] - nll[baseline[s]] for s in seeds]).mean(0)  # per image, over seeds
        label = runs[seeds[0]] if len(seeds) == 1 else f"{labels[runs[seeds[0]]]} ({len(seeds)} seeds)"
        results.append(
            PairedDifference(label, diffs.mean().item(), diffs.std().item() / math.sqrt(len(diffs)), len(seeds))
        )
    return results


def config_label(name: str, varied: dict[str, Any]) -> str:
    """A point's configuration without its seed (its varied values), where seeds vary; else its run name."""
    if "seed" not in varied:
        return name
    return ", ".join(str(v) for k, v in varied.items() if k != "seed") or name


def paired_stderr(sweep_dir: Path, a: Any, b: Any, metric: Any) -> float | None:
    """The standard error of run a's test NLL (IS) minus run b's, image by image, for two single runs
    (SweepEntry rows of one seed) whose per-image NLLs are saved on the same test images; else None."""
    if metric.key != "test_nll_iw" or a.n != 1 or b.n != 1:
        return None
    values = []
    for entry in (a, b):
        path = sweep_dir / str(entry.cells.get("run")) / PER_IMAGE_NLL
        if not path.is_file() or path.is_symlink():
            return None
        with io.reading(path):
            values.append(io.load_torch(path, torch.device("cpu")).double().reshape(-1))
    if len(values[0]) != len(values[1]) or len(values[0]) < 2:
        return None
    diffs = values[0] - values[1]
    return diffs.std().item() / math.sqrt(len(diffs))
