"""Where q(z|x) meets p(z), in one object: the latent's layout, the KL's estimator, and the draws.

A latent is a stack of layers z_1 (bottom) ... z_L (top), laid side by side on its last axis, bottom
first; a flat latent is one layer. The decoder reads the bottom layer; the code (what `VAE.encode`
describes, what the latent statistics, traversals and interpolations are about) is the top layer, and
decoding a code fills the layers below it with the prior's conditional means. The layout is a fact of
the spec (the prior spec's `layers`), not of the parts.

`Latent` is where the parts meet. It draws z ~ q(z|x), handing a hierarchical posterior the prior whose
conditionals it combines with; it evaluates p(z), handing a prior defined through the posterior (the
VampPrior) the posterior's components at its inputs, computed once per call; and it takes the ELBO's KL
by the one estimator `vaezoo.model.kl_estimate` decides. Neither the prior nor the posterior holds a
reference to the other or to the model: the VAE holds this object, and this object the parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from vaezoo.model.distributions import DiagonalGaussian, gaussian_log_density
from vaezoo.model.kl_estimate import KLEstimate

if TYPE_CHECKING:  # the parts build on the model's types; the model only calls them
    from torch import nn

    from vaezoo.parts.posteriors import Posterior, PosteriorSample
    from vaezoo.parts.priors import Prior, PriorDensity

#: What the report says of the latent statistics and figures of a hierarchy.
HIERARCHY_NOTE = "hierarchical latents: the code is the top layer, so these statistics and figures are the top layer's"
#: What the report says of the latent statistics of a categorical latent.
CATEGORICAL_NOTE = (
    "{n} categorical variables of {k} categories, so a 'dimension' here is one variable (its KL in closed form, "
    "active when its category probabilities vary over the images by a total variance above 0.01); the ELBO and "
    "the NLL are the discrete model's, decoding hard one-hot codes (training decodes their Gumbel-softmax relaxation)"
)


@dataclass(frozen=True)
class LatentLayout:
    """How a full latent is laid out on its last axis: its layers' sizes, bottom first."""

    sizes: tuple[int, ...]
    #: K for a latent of categorical variables, each a one-hot block of K values side by side; None for
    #: real vectors.
    categories: int | None = None
    #: What the report says of the latent statistics, where the prior's spec says it (`code_note(latent_dim)`,
    #: which refuses a size it cannot lay out: a codebook latent's positions); None for the notes the
    #: layout derives itself (`code_note`). Prose derived from the spec, so layouts compare without it.
    note: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, prior_spec: object, latent_dim: int) -> LatentLayout:
        """The layout a prior's spec gives: its `layers(latent_dim)`, bottom first, or one layer of
        `latent_dim` for a spec without them (a flat prior registered with a plain spec); and its
        `categories_per_variable()` and `code_note(latent_dim)` where it has them."""
        layers = getattr(prior_spec, "layers", None)
        categories = getattr(prior_spec, "categories_per_variable", None)
        note = getattr(prior_spec, "code_note", None)
        return cls(
            tuple(layers(latent_dim)) if layers is not None else (latent_dim,),
            categories() if categories is not None else None,
            note(latent_dim) if note is not None else None,
        )

    def __post_init__(self) -> None:
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"a latent needs at least one layer, each of at least one dimension, not {self.sizes}")
        if self.categories is not None and (len(self.sizes) > 1 or self.sizes[0] % self.categories):
            raise ValueError(
                f"a categorical latent is one layer of whole variables: latent_dim {self.dim} is not a multiple "
                f"of {self.categories} categories"
            )

    @property
    def variables(self) -> int:
        """The latent's variables, what a per-dimension KL counts: each dimension of real vectors, each
        categorical variable (a block of `categories` values) of a categorical latent."""
        return self.dim // (self.categories or 1)

    @property
    def dim(self) -> int:
        """Values in a full latent: every layer's."""
        return sum(self.sizes)

    @property
    def code_dim(self) -> int:
        """Values in the code, the top layer (`model.latent_dim`)."""
        return self.sizes[-1]

    @property
    def observed_dim(self) -> int:
        """Values the decoder reads, the bottom layer."""
        return self.sizes[0]

    @property
    def hierarchical(self) -> bool:
        """True for a stack of layers: it needs a prior and a posterior over such a stack."""
        return len(self.sizes) > 1

    @property
    def code_note(self) -> str | None:
        """What the report says of the latent statistics and figures, where the code is not the whole latent
        or its dimensions are not real values."""
        if self.note is not None:
            return self.note
        if self.categories is not None:
            return CATEGORICAL_NOTE.format(n=self.variables, k=self.categories)
        return HIERARCHY_NOTE if self.hierarchical else None

    def split(self, z: torch.Tensor) -> list[torch.Tensor]:
        """A full latent's layers, bottom first."""
        return list(z.split(self.sizes, dim=-1))

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The code of a full latent: its top layer (all of it for a flat latent)."""
        return self.split(z)[-1] if self.hierarchical else z

    def observed(self, z: torch.Tensor) -> torch.Tensor:
        """The part of a full latent that the decoder reads: its bottom layer (all of it for a flat latent)."""
        return self.split(z)[0] if self.hierarchical else z


class Latent:
    """The meeting of q(z|x) and p(z) in a VAE: the layout, the KL's estimator, draws and densities.

    It holds the VAE's encoder, posterior and prior as plain attributes (the VAE registers them, so
    each parameter is counted once, under its old state-dict key); `copy.deepcopy` of the VAE copies
    this object with it, pointing at the copy's parts.
    """

    def __init__(
        self, layout: LatentLayout, estimate: KLEstimate, encoder: nn.Module, posterior: Posterior, prior: Prior
    ) -> None:
        self.layout, self.estimate = layout, estimate
        self.encoder, self.posterior, self.prior = encoder, posterior, prior

    def density(self) -> PriorDensity:
        """p(z) as a density: the prior itself, or, for a prior defined through the posterior at inputs
        of its own (the VampPrior's pseudo-inputs), the prior given the posterior's components there."""
        inputs = self.prior.inputs()
        if inputs is None:
            return self.prior
        return self.prior.given(self.posterior.distribution(self.encoder(inputs)))

    def encode(self, features: torch.Tensor) -> DiagonalGaussian:
        """The posterior's description of the code for each image (`Posterior.encode`: its base diagonal
        Gaussian for most), (B, D) each; handed the prior, as draws are."""
        return self.posterior.encode(features, self.prior)

    def draw(
        self, features: torch.Tensor, samples: int | None = None, generator: torch.Generator | None = None
    ) -> PosteriorSample:
        """Reparameterized z ~ q(z|x) (full latents): one per image, or `samples` along a new leading axis.
        A hierarchical posterior draws top-down through the prior's conditionals, handed to it here."""
        return self.posterior.rsample(features, samples, generator, prior=self.prior)

    def kl_terms(
        self, draw: PosteriorSample, density: PriorDensity | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(KL per image, KL per dimension or None) at the draw, by `estimate`; pass `density` (from
        `density()`) to reuse it."""
        if self.estimate is KLEstimate.MONTE_CARLO:
            return draw.log_q - (self.density() if density is None else density).log_prob(draw.z), None
        # a closed form needs no components: the priors defined through the posterior have none
        per_dim = self.prior.kl(draw.base) if self.estimate is KLEstimate.CLOSED_FORM else draw.layer_kl
        return per_dim.sum(-1), per_dim

    def log_prior_ratio(self, draw: PosteriorSample) -> torch.Tensor:
        """log p(z) - log q(z|x) at the draw: an importance weight's latent part."""
        return self.density().log_prob(draw.z) - draw.log_q

    def weights_kl(
        self, features: torch.Tensor, log_prior_ratio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The KL reported beside importance weights of draws (`log_prior_ratio`, (samples, B)): in closed
        form where the model's estimate is, else the draws' mean of log q - log p."""
        if self.estimate is KLEstimate.CLOSED_FORM:
            per_dim = self.prior.kl(self.encode(features))
            return per_dim.sum(-1), per_dim
        return -log_prior_ratio.mean(0), None

    def code_kl_per_dim(self, q: DiagonalGaussian, generator: torch.Generator | None = None) -> torch.Tensor:
        """KL(q_d || p_d) for each dimension of Gaussian codes q, (B, D), against the prior's marginal of
        the dimension: in closed form where the prior has one, else at one draw per code."""
        density = self.density()
        if density.closed_form_kl:
            return density.kl(q)
        z = q.rsample(generator=generator)
        return gaussian_log_density(z, q.mu, q.logvar) - density.marginal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n full latents from p(z), (n, dim), the noise drawn on the generator's device."""
        return self.density().sample(n, generator)

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The code of a full latent (`LatentLayout.code`)."""
        return self.layout.code(z)

    def observed(self, z: torch.Tensor) -> torch.Tensor:
        """What the decoder reads of a full latent (`LatentLayout.observed`)."""
        return self.layout.observed(z)

    def expand(self, code: torch.Tensor) -> torch.Tensor:
        """The full latent for a code: the code itself, or in a hierarchy the code on top of the prior's
        conditional means of the layers below it, each at the layer above."""
        layers = [code]
        for layer in reversed(range(len(self.layout.sizes) - 1)):
            layers.insert(0, self.prior.conditional(layer, layers[0]).mu)
        return torch.cat(layers, dim=-1) if len(layers) > 1 else code
