"""Training objectives: what the optimizer minimizes per image, given the KL weight beta.

Every module here is imported, so a new objective is one file: it registers itself on import.
"""

import importlib
import pkgutil

from vaezoo.parts.objectives.base import OBJECTIVES, Objective

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from vaezoo.parts.objectives.elbo import ELBO
from vaezoo.parts.objectives.iwae import IWAE

__all__ = ["ELBO", "IWAE", "OBJECTIVES", "Objective"]
