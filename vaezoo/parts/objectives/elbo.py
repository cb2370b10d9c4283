"""The ELBO with one reparameterized sample per image (Kingma & Welling 2014)."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Literal

import torch

from vaezoo.core.schema import StrictModel
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives.base import OBJECTIVES, Objective


class ELBOSpec(StrictModel):
    kind: Literal["elbo"]


@OBJECTIVES.register("elbo")
class ELBO(Objective):
    """The ELBO with one reparameterized sample per image: -log p(x|z) + beta * KL (Kingma & Welling 2014),
    plus the posterior's training penalty where it has one (VQ-VAE's commitment loss, outside the bound)."""

    Spec: ClassVar = ELBOSpec
    conditional: ClassVar[bool] = True
    adds_penalty: ClassVar[bool] = True

    def terms(
        self,
        model: VAE,
        x: torch.Tensor,
        beta: float,
        weighting: KLWeighting,
        *,
        step: int | torch.Tensor = 0,
        y: torch.Tensor | None = None,
    ) -> ELBOTerms:
        terms = model.elbo(x, y=y)
        loss = terms.recon_nll + weighting.penalty(terms.kl, terms.kl_per_dim, beta, step=step)
        return replace(terms, beta=beta, loss=loss if terms.penalty is None else loss + terms.penalty)
