"""PIWAE (Rainforth et al. 2018, "Tighter variational bounds are not necessarily better"): the
generative network trained on the tight bound, the inference network on one whose gradient keeps its
signal, from the same M * K draws per image:

- the generative network (decoder, prior, likelihood): theta <- grad_theta IWAE_{MK}, the
  importance-weighted bound of all M * K draws;
- the inference network (encoder, posterior): phi <- grad_phi MIWAE_{M,K}, the mean of M bounds of
  K draws each (`miwae`).

One loss carries both: its value is -IWAE_{MK} (what is reported), and a term worth zero adds to the
inference network's gradient the difference grad_phi (IWAE_{MK} - MIWAE_{M,K}), computed on the same
graph by one extra backward pass. The inference network's parameters are trained on MIWAE wherever
else they appear (the VampPrior reads its pseudo-inputs through the encoder).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives.base import OBJECTIVES
from vaezoo.parts.objectives.iwae import importance_weights, log_mean_exp
from vaezoo.parts.objectives.miwae import MIWAE


def inference_parameters(model: VAE) -> list[torch.nn.Parameter]:
    """The inference network's trainable parameters, phi: the encoder's and the posterior's."""
    seen: dict[int, torch.nn.Parameter] = {}
    for module in (model.encoder, model.posterior):
        for parameter in module.parameters():
            if parameter.requires_grad:
                seen.setdefault(id(parameter), parameter)
    return list(seen.values())


def rerouted(difference: torch.Tensor, parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """A scalar worth 0 whose gradient is grad `difference` on `parameters` and 0 on every other one:
    added to a loss, it moves those parameters' gradient by that much and nothing else's."""
    if not parameters or not difference.requires_grad:  # nothing to move (or no gradient taken: eval)
        return difference.new_zeros(())
    grads = torch.autograd.grad(difference, parameters, retain_graph=True, allow_unused=True)
    terms = [(g * (p - p.detach())).sum() for g, p in zip(grads, parameters, strict=True) if g is not None]
    return torch.stack(terms).sum() if terms else difference.new_zeros(())


class PIWAESpec(StrictModel):
    kind: Literal["piwae"]
    outer: int = Field(default=8, ge=1, le=1000, description="M, the bounds the inference network's target averages")
    samples: int = Field(default=8, ge=1, le=5000, description="K, the importance samples inside each of them")


@OBJECTIVES.register("piwae")
class PIWAE(MIWAE):
    """-IWAE_{MK} for the generative network, -MIWAE_{M,K} for the inference network, on M * K draws
    per image; the loss's value is -IWAE_{MK}. beta scales the prior ratio inside each weight, as for
    IWAE. M = 1 is IWAE with K samples. MIWAE's (M, K) and the weightings it accepts, another loss."""

    Spec: ClassVar = PIWAESpec
    model_title: ClassVar[str] = "PIWAE"
    loss_title: ClassVar[str] = "the PIWAE objective (the IWAE bound for the decoder, MIWAE's for the encoder)"

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        weights = importance_weights(model, x, self.outer * self.samples, beta)
        iwae = log_mean_exp(weights.log_w)  # (B,)
        miwae = log_mean_exp(weights.log_w.unflatten(0, (self.outer, self.samples)), dim=1).mean(0)
        # the step minimizes the batch's mean loss: the inference network's share is moved on that mean
        shift = rerouted((iwae - miwae).mean(), inference_parameters(model)) if self.outer > 1 else 0.0
        return weights.terms(-iwae + shift, beta)
