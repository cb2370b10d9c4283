"""Encoders and decoders; importing this package registers every one of them."""

from vaezoo.nn import decoders, encoders  # noqa: F401  (registration side effect)
from vaezoo.nn.decoders import DECODERS
from vaezoo.nn.encoders import ENCODERS

__all__ = ["DECODERS", "ENCODERS"]
