"""The model's parts, one module per family; importing this package registers every component.

Every module here is imported, so a new part is one file: it registers itself on import.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from vaezoo.parts.decoders import DECODERS
from vaezoo.parts.encoders import ENCODERS
from vaezoo.parts.likelihoods import LIKELIHOODS
from vaezoo.parts.posteriors import POSTERIORS
from vaezoo.parts.priors import PRIORS

__all__ = ["DECODERS", "ENCODERS", "LIKELIHOODS", "POSTERIORS", "PRIORS"]
