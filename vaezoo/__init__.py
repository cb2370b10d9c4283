"""vaezoo: a configurable zoo of Variational Autoencoders in PyTorch.

    import vaezoo
    run = vaezoo.run("experiments/quickstart.yaml", train__epochs=2)   # -> vaezoo.Run
    run = vaezoo.load("runs/quickstart")                               # a finished run folder
    run.metrics.test_nll_iw; run.figure("samples"); run.sample(16)
    vaezoo.list_components()                                           # the kinds each spec slot takes
    @vaezoo.register("encoder", "mine")                                # a part of your own, usable at once

The names below load on first use, so that `import vaezoo` (and the command line's --help) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    "run": "vaezoo.api",
    "load": "vaezoo.api",
    "Run": "vaezoo.api",
    "list_components": "vaezoo.api",
    "register": "vaezoo.spec.slots",
    "ExperimentSpec": "vaezoo.spec.experiment",
    "load_spec": "vaezoo.spec.experiment",
    "RunMetrics": "vaezoo.evaluate.records",
    "HistoryRow": "vaezoo.evaluate.records",
    "METRICS": "vaezoo.evaluate.records",
    "VaezooError": "vaezoo.core.errors",
}
__all__ = [
    "METRICS",
    "ExperimentSpec",
    "HistoryRow",
    "Run",
    "RunMetrics",
    "VaezooError",
    "__version__",
    "list_components",
    "load",
    "load_spec",
    "register",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'vaezoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
