"""The experiment specs vaezoo ships (experiments/*.yaml, package data of the wheel), runnable by name:
`vaezoo run quickstart`, `vaezoo.run("quickstart")`. A path that exists always wins over a name."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from vaezoo.core.errors import SpecError


def experiments_dir() -> Path:
    """The folder of the shipped specs: vaezoo/resources/experiments (in a checkout, a link to experiments/)."""
    return Path(str(resources.files("vaezoo") / "resources" / "experiments"))


def shipped_names() -> list[str]:
    """The names of the shipped specs (quickstart, mnist-mlp, ablation-beta, ...)."""
    return sorted(path.stem for path in experiments_dir().glob("*.yaml"))


def spec_path(text: str | Path) -> Path:
    """`text` as a spec file: the path itself where it exists, else the shipped spec of that name (with or
    without .yaml); SpecError naming both when neither is there."""
    path = Path(text)
    if path.exists() or "/" in str(text) or os.sep in str(text):  # a path with folders is never a name
        return path
    shipped = experiments_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    raise SpecError(f"spec file not found: {path} (nor a shipped spec of that name: {', '.join(shipped_names())})")
