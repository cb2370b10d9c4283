"""Which estimator the ELBO's KL uses, decided in one place (`vaezoo.model.latent.Latent` applies it).

`model.kl_estimate: analytic` (the default) takes the closed form wherever the parts give one: the
whole KL for a diagonal Gaussian posterior against a prior with a closed form; layer by layer for a
hierarchy (each layer's Gaussian against the prior's conditional at the sample of the layers above,
the LVAE's form); and one sample's log q(z|x) - log p(z) otherwise (flows, mixtures, the VampPrior).
`monte-carlo` takes that one-sample estimate for every model, as the VampPrior's and IAF's code do:
an ablation that ranks models should train them all with one estimator, or say which each used.
Both are unbiased; the closed forms have less variance.

A prior and a posterior meet only on the same latent space (`space`: real vectors, or one-hot blocks
of categorical variables): there is no KL between a categorical q and a Gaussian p, and the spec
refuses the pair. For a relaxed categorical posterior (`gumbel`) the closed form is the discrete
model's KL(q(c|x) || p(c)), the paper's, and the one-sample estimate is log q(c|x) - log p(c) at the
code c its relaxed draw stands for (`vaezoo.parts.gumbel`): both estimate the same KL.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior
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
    if prior.space != posterior.space:
        raise ValueError(
            f"the prior {prior.__name__} is over {prior.space} latents and the posterior {posterior.__name__} over "
            f"{posterior.space} ones: a KL between them is not defined"
        )
    if choice == "monte-carlo":
        return KLEstimate.MONTE_CARLO
    if prior.closed_form_kl and posterior.closed_form_base():
        return KLEstimate.CLOSED_FORM
    if posterior.layered_kl:
        return KLEstimate.PER_LAYER
    return KLEstimate.MONTE_CARLO
