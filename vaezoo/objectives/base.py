"""What every training objective shares: the Objective protocol and the registry its kinds fill."""

from __future__ import annotations

from typing import ClassVar, Protocol

import torch

from vaezoo.kl import KLWeighting
from vaezoo.model import VAE, ELBOTerms
from vaezoo.registry import Registry


class Objective(Protocol):
    #: True when the loss at beta = 1 is a bound on -log p(x) (what the family contract tests check).
    is_bound: ClassVar[bool]

    def terms(self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting) -> ELBOTerms:
        """The per-image terms of the objective on a batch; `.loss` is what training minimizes."""
        ...

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        """Whether this objective can honour the KL weighting's penalty."""
        ...


OBJECTIVES: Registry[type[Objective]] = Registry("objective")
