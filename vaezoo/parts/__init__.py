"""The registered parts, one module (or package) per family: the model's, the KL weightings, the learning-rate schedules and the objectives; importing this package registers every component.

Every module here is imported, so a new part is one file: it registers itself on import.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from vaezoo.parts.decoders import DECODERS
from vaezoo.parts.encoders import ENCODERS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS
from vaezoo.parts.likelihoods import LIKELIHOODS
from vaezoo.parts.lr_schedules import LR_SCHEDULES
from vaezoo.parts.objectives import OBJECTIVES
from vaezoo.parts.posteriors import POSTERIORS
from vaezoo.parts.priors import PRIORS

__all__ = ["DECODERS", "ENCODERS", "KL_WEIGHTINGS", "LIKELIHOODS", "LR_SCHEDULES", "OBJECTIVES", "POSTERIORS", "PRIORS"]
