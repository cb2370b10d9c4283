"""What the command line says about where a sweep's points run, read by every executor (its own
module, so that an executor module imports it without importing the registry that imports it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutorOptions:
    """What the command line says about where points run; each executor reads its own fields."""

    jobs: int = 1  # local: processes running points at once
    address: str | None = None  # ray: the cluster to join ("auto", "HOST:PORT"); None starts a local instance
    shared: bool = False  # ray: the output folder is at the same path on every node, so write it in place
