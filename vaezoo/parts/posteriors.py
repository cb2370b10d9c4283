"""Posteriors q(z|x): the encoder's features in, samples z and their log q(z|x) out, together.

A posterior also exposes its base diagonal Gaussian (`distribution`): the posterior itself for
`gaussian`, the distribution a flow starts from for flows. Samples and log-densities always come
from `rsample`, so that a flow can add its log-determinant there, reading the features as context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import nn

from vaezoo.core.registry import Registry
from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian

if TYPE_CHECKING:
    from vaezoo.parts.priors import Prior


@dataclass(frozen=True)
class PosteriorSample:
    """z ~ q(z|x) with log q(z|x) at it; `base` is the diagonal Gaussian the sample started from."""

    z: torch.Tensor  # (B, D) or (samples, B, D)
    log_q: torch.Tensor  # z's leading shape
    base: DiagonalGaussian
    #: A hierarchy's KL of every layer's dimensions against the prior's conditional at the sample of the
    #: layers above, in closed form (z's shape); None for a flat posterior.
    layer_kl: torch.Tensor | None = None
    #: A hierarchy's posterior mean of every layer at the draw of the layers above (z's shape): averaged
    #: over draws it estimates E_q[z] with less noise than z itself does. None for a flat posterior.
    layer_mean: torch.Tensor | None = None
    #: A training penalty per image outside the bound (VQ-VAE's commitment loss), which the objectives that
    #: add it (`Objective.adds_penalty`) put into the loss and never into the ELBO; None for most posteriors.
    penalty: torch.Tensor | None = None


class Posterior(nn.Module):
    """q(z|x) from the encoder's features."""

    #: True when z ~ `distribution(features)` exactly, so a prior's closed-form KL against it holds.
    is_base_gaussian: ClassVar[bool]
    #: True for a posterior over a stack of latent layers (drawn top-down through the prior's
    #: conditionals), which needs a hierarchical layout (`vaezoo.model.latent.LatentLayout`).
    hierarchical: ClassVar[bool] = False
    #: True when its samples carry each layer's closed-form KL (`PosteriorSample.layer_kl`).
    layered_kl: ClassVar[bool] = False
    #: True when the code (what `encode` describes) is distributed exactly as `distribution` says; a
    #: flow's code is not its base Gaussian, so its moments are estimated from samples.
    code_is_base: ClassVar[bool] = True
    #: What z is (`vaezoo.model.kl_estimate`): "real" vectors, or "categorical" one-hot blocks; a prior
    #: meets only a posterior over the same space.
    space: ClassVar[str] = "real"
    #: True when its samples carry a training penalty (`PosteriorSample.penalty`): only an objective that
    #: adds it may train it (`vaezoo.spec.experiment.ExperimentSpec`).
    penalized: ClassVar[bool] = False
    #: What its test NLL is, where that is not an importance-weighted estimate of -log p(x) (results print
    #: it beside the NLL); None for most posteriors.
    nll_note: ClassVar[str | None] = None
    #: What a model with this posterior is called in a report's title, where the posterior makes it a
    #: family of its own (a VQ-VAE); None where the objective names the model.
    model_title: ClassVar[str | None] = None

    @classmethod
    def closed_form_base(cls) -> bool:
        """True when a prior's closed-form KL against `distribution(features)` is the ELBO's KL: a
        diagonal Gaussian posterior drawn from it exactly (`is_base_gaussian`), or a posterior whose
        reported model is the discrete code that `distribution` describes exactly."""
        return cls.is_base_gaussian

    def set_step(self, step: int | torch.Tensor) -> None:
        """Told the 0-based optimizer step before each training step (a device scalar under a CUDA graph),
        for a posterior that anneals with it (a relaxation's temperature); most ignore it."""

    def distribution(self, features: torch.Tensor) -> DiagonalGaussian:
        """The base diagonal Gaussian for each image, (B, D) each."""
        raise NotImplementedError

    def encode(self, features: torch.Tensor, prior: Prior) -> DiagonalGaussian:
        """What `VAE.encode` describes of each image's code (what reconstructions decode, the latent
        statistics read): `distribution(features)` for most posteriors; a posterior that needs the prior to
        say it (a codebook's quantization, `vaezoo.parts.vq`) overrides this."""
        return self.distribution(features)

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        """Reparameterized draws: one per image, or `samples` per image along a new leading axis.

        `prior` is the model's prior, which a hierarchical posterior draws through (its conditionals);
        a flat one ignores it. `vaezoo.model.latent.Latent.draw` hands it over.
        """
        raise NotImplementedError


POSTERIORS: Registry[type[Posterior]] = Registry("posterior")


class GaussianSpec(StrictModel):
    kind: Literal["gaussian"]


@POSTERIORS.register("gaussian")
class GaussianPosterior(Posterior):
    """A diagonal Gaussian whose mean and log-variance are a linear function of the features."""

    Spec: ClassVar = GaussianSpec
    is_base_gaussian = True

    def __init__(self, *, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(in_features, 2 * latent_dim)

    def distribution(self, features: torch.Tensor) -> DiagonalGaussian:
        mu, logvar = self.head(features).chunk(2, dim=-1)
        return DiagonalGaussian(mu, logvar)

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        q = self.distribution(features)
        z = q.rsample(samples, generator)
        return PosteriorSample(z=z, log_q=q.log_prob(z), base=q)
