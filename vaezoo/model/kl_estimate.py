"""Where the posterior meets the prior in the ELBO: which estimator its KL uses, decided in one place.

`model.kl_estimate: analytic` (the default) takes the closed form wherever the parts give one: the
whole KL for a diagonal Gaussian posterior against a prior with a closed form; layer by layer for a
hierarchy (each layer's Gaussian against the prior's conditional at the sample of the layers above,
the LVAE's form); and one sample's log q(z|x) - log p(z) otherwise (flows, mixtures, the VampPrior).
`monte-carlo` takes that one-sample estimate for every model, as the VampPrior's and IAF's code do:
an ablation that ranks models should train them all with one estimator, or say which each used.
Both are unbiased; the closed forms have less variance.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior, PosteriorSample
    from vaezoo.parts.priors import Prior

KLChoice = Literal["analytic", "monte-carlo"]


class KLEstimate(str, Enum):
    """The estimator that ran: what results report as `kl_estimate`."""

    CLOSED_FORM = "closed-form"
    PER_LAYER = "closed-form per layer"
    MONTE_CARLO = "monte-carlo"

    @property
    def per_dimension(self) -> bool:
        """True when it gives the KL of every latent dimension (what free bits floors)."""
        return self is not KLEstimate.MONTE_CARLO


def kl_estimate(prior: type[Prior], posterior: type[Posterior], choice: KLChoice) -> KLEstimate:
    """The estimator that `choice` gives for these kinds of prior and posterior."""
    if choice == "monte-carlo":
        return KLEstimate.MONTE_CARLO
    if prior.closed_form_kl and posterior.is_base_gaussian:
        return KLEstimate.CLOSED_FORM
    if posterior.layered_kl:
        return KLEstimate.PER_LAYER
    return KLEstimate.MONTE_CARLO


def kl_terms(estimate: KLEstimate, prior: Prior, draw: PosteriorSample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(KL per image, KL per latent dimension or None) at the posterior's draw, by `estimate`."""
    if estimate is KLEstimate.CLOSED_FORM:
        per_dim = prior.kl(draw.base)
    elif estimate is KLEstimate.PER_LAYER:
        per_dim = draw.layer_kl
    else:
        return draw.log_q - prior.log_prob(draw.z), None
    return per_dim.sum(-1), per_dim
