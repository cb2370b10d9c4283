"""Hierarchical latents: the ladder VAE's prior and top-down posterior (Sønderby et al. 2016).

The latent is a stack of layers z_1 (bottom, what the decoder reads) ... z_L (top). The prior is
top-down, p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2), with p(z_L) = N(0, I) and each conditional a
diagonal Gaussian from a small network. The posterior shares the encoder's path: bottom-up, each
layer gets a Gaussian estimate from the encoder's features (the bottom layer) or from a further
deterministic layer on them (the layers above); top-down, q(z_L|x) is the top's estimate, and each
lower q(z_l|.) combines its bottom-up estimate with the prior's conditional p(z_l|z_{l+1}) at the
sample drawn for the layer above. `combine: precision` is the ladder paper's precision-weighted
product. `combine: residual` (the default; Vahdat & Kautz 2020, NVAE) reads the bottom-up estimate
as a shift of the conditional's mean and a scale of its variance: q(z_l|.) = N(mu_p + d_mu,
var_p * exp(d_logvar)). Its KL is zero at a finite point (d = 0), as a plain VAE's is; the product's
is zero only as the bottom-up variance goes to infinity, where its gradients vanish, and on MNIST
the product's lower layer collapsed that way (docs/results/ablation-zoo).

`model.latent_dim` is the top layer's size; `lower` lists the layers below it, bottom first
(`LadderPriorSpec.layers`). A full latent is [z_1, ..., z_L] on its last axis. What the rest of
vaezoo sees as the code (`encode`, the latent statistics, traversals, the scatter, interpolations)
is the top layer z_L; decoding a code fills the layers below with the prior's conditional means
(`vaezoo.model.latent`, which owns that layout). The posterior is built with the layer sizes and
draws through the prior handed to `rsample`; neither keeps a reference to the other.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import (
    DiagonalGaussian,
    gaussian_kl_per_dim,
    gaussian_log_density,
    gaussian_pair_kl,
    standard_log_density,
)
from vaezoo.parts.layers import ACTIVATIONS, Activation
from vaezoo.parts.posteriors import POSTERIORS, Posterior, PosteriorSample
from vaezoo.parts.priors import PRIORS, Prior, PriorSpecBase

LayerSize = Annotated[int, Field(ge=1, le=4096)]


def _gaussian(params: torch.Tensor) -> DiagonalGaussian:
    mu, logvar = params.chunk(2, dim=-1)
    return DiagonalGaussian(mu, logvar)


def _network(n_in: int, hidden: int, n_out: int, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), ACTIVATIONS[activation](), nn.Linear(hidden, n_out))


def stack(lower: list[int], top: int) -> list[int]:
    """A ladder's layer sizes, bottom first: the layers below the top, then the top (the code)."""
    return [*lower, top]


class LadderPriorSpec(PriorSpecBase):
    kind: Literal["ladder"]
    lower: list[LayerSize] = Field(
        default=[64], min_length=1, max_length=8, description="sizes of the layers below the top, bottom first"
    )
    hidden: int = Field(default=256, ge=1, le=65536, description="width of each conditional's hidden layer")
    activation: Activation = "tanh"

    def layers(self, latent_dim: int) -> list[int]:
        return stack(self.lower, latent_dim)


@PRIORS.register("ladder")
class LadderPrior(Prior):
    """p(z_L) prod_l p(z_l | z_{l+1}): a standard normal top and diagonal Gaussian conditionals."""

    Spec: ClassVar = LadderPriorSpec
    closed_form_kl = False

    def __init__(self, *, latent_dim: int, lower: list[int], hidden: int, activation: Activation) -> None:
        super().__init__()
        self.sizes = stack(lower, latent_dim)  # bottom first
        # conditionals[l] gives p(z_l | z_{l+1}) for the layer l below the top (bottom first)
        self.conditionals = nn.ModuleList(
            _network(above, hidden, 2 * size, activation) for size, above in itertools.pairwise(self.sizes)
        )
        self.register_buffer("anchor", torch.zeros(()), persistent=False)

    def split(self, z: torch.Tensor) -> list[torch.Tensor]:
        """A full latent's layers, bottom first."""
        return list(z.split(self.sizes, dim=-1))

    def conditional(self, layer: int, above: torch.Tensor) -> DiagonalGaussian:
        """p(z_layer | z_{layer+1}), layers counted from 0 at the bottom."""
        return _gaussian(self.conditionals[layer](above))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        layers = self.split(z)
        total = standard_log_density(layers[-1]).sum(-1)
        for layer, (below, above) in enumerate(itertools.pairwise(layers)):
            total = total + self.conditional(layer, above).log_prob(below)
        return total

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_log_density(z)  # the code is the top layer, whose prior is N(0, I)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # noise on the generator's device (the same draws whatever device the model is on), layers
        # computed on the model's
        device, dtype = generator.device if generator is not None else self.anchor.device, self.anchor.dtype
        layers = [torch.randn(n, self.sizes[-1], generator=generator, device=device, dtype=dtype)]
        for layer in reversed(range(len(self.conditionals))):
            q = self.conditional(layer, layers[0].to(self.anchor.device))
            eps = torch.randn(q.mu.shape, generator=generator, device=device, dtype=dtype).to(q.mu.device)
            layers.insert(0, (q.mu + torch.exp(0.5 * q.logvar) * eps).to(device))
        return torch.cat(layers, dim=-1)

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.sizes[-1], device=self.anchor.device)
        return zeros, zeros + 1.0


def precision_weighted(estimate: DiagonalGaussian, conditional: DiagonalGaussian) -> DiagonalGaussian:
    """The normalized product of two diagonal Gaussians: precisions add, means weight by precision."""
    precision_a, precision_b = torch.exp(-estimate.logvar), torch.exp(-conditional.logvar)
    logvar = -torch.log(precision_a + precision_b)
    mu = (estimate.mu * precision_a + conditional.mu * precision_b) * torch.exp(logvar)
    return DiagonalGaussian(mu, logvar)


def residual(estimate: DiagonalGaussian, conditional: DiagonalGaussian) -> DiagonalGaussian:
    """The conditional shifted by the estimate's mean and its variance scaled by exp(estimate's logvar)."""
    return DiagonalGaussian(conditional.mu + estimate.mu, conditional.logvar + estimate.logvar)


COMBINE = {"precision": precision_weighted, "residual": residual}


class LadderPosteriorSpec(StrictModel):
    kind: Literal["ladder"]
    hidden: int = Field(default=256, ge=1, le=65536, description="width of each bottom-up layer above the encoder")
    activation: Activation = "tanh"
    combine: Literal["residual", "precision"] = Field(
        default="residual",
        description="how a lower layer's bottom-up estimate meets the prior's conditional: NVAE's residual "
        "shift and scale, or the ladder paper's precision-weighted product",
    )


@POSTERIORS.register("ladder")
class LadderPosterior(Posterior):
    """Top-down inference sharing the encoder's path: built with the ladder's layer sizes, it draws
    through the ladder prior handed to `rsample`, combining its conditionals with its own bottom-up
    estimates."""

    Spec: ClassVar = LadderPosteriorSpec
    is_base_gaussian = False
    hierarchical = True
    layered_kl = True

    def __init__(
        self,
        *,
        in_features: int,
        layers: list[int],
        hidden: int,
        activation: Activation,
        combine: Literal["residual", "precision"] = "residual",
    ) -> None:
        super().__init__()
        self.combine = COMBINE[combine]
        # NVAE's residual reads the top-down state beside the bottom-up features: a shift that depends
        # on x alone makes z_{l+1} redundant (any shift it could cause, x's own can), and the top
        # layer then carried 0.02 nats on MNIST; the precision-weighted product reads x alone, as in
        # the ladder paper.
        self.reads_above = combine == "residual"
        self.paths = nn.ModuleList()
        self.heads = nn.ModuleList()
        width = in_features
        for layer, size in enumerate(layers):  # each layer's path, then its head: the order of the draws
            if layer == 0:  # the bottom layer reads the encoder's features directly
                self.paths.append(nn.Identity())
            else:
                self.paths.append(nn.Sequential(nn.Linear(width, hidden), ACTIVATIONS[activation]()))
                width = hidden
            above = layers[layer + 1] if self.reads_above and layer + 1 < len(layers) else 0
            self.heads.append(nn.Linear(width + above, 2 * size))

    def bottom_up(self, features: torch.Tensor) -> list[torch.Tensor]:
        """The deterministic bottom-up features each layer's head reads, bottom first."""
        hidden, h = [], features
        for path in self.paths:
            h = path(h)
            hidden.append(h)
        return hidden

    def estimate(self, layer: int, h: torch.Tensor, above: torch.Tensor | None = None) -> DiagonalGaussian:
        """The layer's Gaussian from its bottom-up features `h` and, for the residual combination of a
        layer under the top, the sample `above` of the layer above it (whose leading axes it takes)."""
        if above is not None and self.reads_above:
            h = torch.cat([h.expand(*above.shape[:-1], h.shape[-1]), above], dim=-1)
        return _gaussian(self.heads[layer](h))

    def distribution(self, features: torch.Tensor) -> DiagonalGaussian:
        """q(z_L|x), the top layer's posterior: the code's distribution."""
        return self.estimate(len(self.heads) - 1, self.bottom_up(features)[-1])

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        if not isinstance(prior, LadderPrior):
            raise TypeError("the ladder posterior draws through the ladder prior's conditionals: pass prior=")
        hidden = self.bottom_up(features)
        top = self.estimate(len(hidden) - 1, hidden[-1])
        layers = [top.rsample(samples, generator)]
        log_q = top.log_prob(layers[0])
        kls = [gaussian_kl_per_dim(top.mu, top.logvar).expand_as(layers[0])]  # the prior's top is N(0, I)
        means = [top.mu.expand_as(layers[0])]
        for layer in reversed(range(len(hidden) - 1)):
            conditional = prior.conditional(layer, layers[0])
            q = self.combine(self.estimate(layer, hidden[layer], layers[0]), conditional)
            z = q.mu + torch.exp(0.5 * q.logvar) * torch.randn(
                q.mu.shape, generator=generator, device=q.mu.device, dtype=q.mu.dtype
            )
            log_q = log_q + gaussian_log_density(z, q.mu, q.logvar).sum(-1)
            layers.insert(0, z)
            kls.insert(0, gaussian_pair_kl(q, conditional))
            means.insert(0, q.mu)
        return PosteriorSample(
            z=torch.cat(layers, dim=-1),
            log_q=log_q,
            base=top,
            layer_kl=torch.cat(kls, dim=-1),
            layer_mean=torch.cat(means, dim=-1),
        )
