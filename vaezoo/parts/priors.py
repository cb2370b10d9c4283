"""Priors p(z): log-density, sampling, per-dimension marginals and, where one exists, the KL
against a diagonal Gaussian posterior in closed form (otherwise the ELBO estimates it by Monte Carlo)."""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol

import torch
from pydantic import Field
from torch import nn

from vaezoo.core.registry import Registry
from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian, gaussian_kl_per_dim, gaussian_log_density, standard_log_density


class PriorDensity(Protocol):
    """p(z) as a density: what a prior is, or what it gives (`Prior.given`) once it has the posterior's
    components at its inputs."""

    closed_form_kl: bool

    def log_prob(self, z: torch.Tensor) -> torch.Tensor: ...
    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor: ...
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def kl(self, q: DiagonalGaussian) -> torch.Tensor: ...
    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]: ...


class Prior(nn.Module):
    """p(z) over a full latent (`vaezoo.model.latent.LatentLayout`): a density, nothing more.

    How the latent is laid out (a hierarchy's layers, its code) is the spec's (`PriorSpecBase.layers`)
    and `vaezoo.model.latent`'s; a prior knows neither the posterior nor the model.
    """

    #: True when `kl` gives KL(q || p) in closed form for a diagonal Gaussian q.
    closed_form_kl: ClassVar[bool]
    #: True for a prior defined through the posterior at inputs of its own (the VampPrior's
    #: pseudo-inputs): it is built with the image shape, and is a density only `given` the posterior there.
    through_posterior: ClassVar[bool] = False
    #: What z is: "real" vectors, or "categorical" one-hot blocks (`Posterior.space`, which must match).
    space: ClassVar[str] = "real"

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the latent dimensions (last axis)."""
        raise NotImplementedError

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_d(z_d) of each dimension's marginal, elementwise (for per-dimension diagnostics)."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws, (n, D); the noise is drawn on the generator's device, so a CPU generator gives the
        same draws whatever device the model is on."""
        raise NotImplementedError

    def kl(self, q: DiagonalGaussian) -> torch.Tensor:
        """KL(q || p) per dimension in closed form, (B, D); only where `closed_form_kl`."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of each dimension's marginal, (D,) each (traversals use them)."""
        raise NotImplementedError

    def conditional(self, layer: int, above: torch.Tensor) -> DiagonalGaussian:
        """A hierarchy's p(z_layer | z_layer+1), layers counted from 0 at the bottom."""
        raise NotImplementedError(f"{type(self).__name__} is not a hierarchy")

    def inputs(self) -> torch.Tensor | None:
        """The images through whose posterior the prior is defined (`through_posterior`), else None."""
        return None

    def given(self, components: DiagonalGaussian) -> PriorDensity:
        """The density given the posterior's base Gaussians at `inputs()`, (K, D) each: the prior itself
        where it needs none."""
        return self


class PriorSpecBase(StrictModel):
    """What every prior's spec says of the latent's layout."""

    def layers(self, latent_dim: int) -> list[int]:
        """The latent's layer sizes, bottom first, for `model.latent_dim` (the top layer's, the code's):
        one layer for a flat prior."""
        return [latent_dim]

    def categories_per_variable(self) -> int | None:
        """K, for a latent of categorical variables laid out as one-hot blocks of K; None for real vectors."""
        return None


PRIORS: Registry[type[Prior]] = Registry("prior")


def _noise_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


class StandardSpec(PriorSpecBase):
    kind: Literal["standard"]


@PRIORS.register("standard")
class StandardNormal(Prior):
    """N(0, I), the VAE's usual prior; its KL against a diagonal Gaussian is closed-form."""

    Spec: ClassVar = StandardSpec
    closed_form_kl = True

    def __init__(self, *, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("anchor", torch.zeros(()), persistent=False)  # follows the model's device

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_log_density(z).sum(-1)

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_log_density(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = _noise_device(generator, self.anchor.device)
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def kl(self, q: DiagonalGaussian) -> torch.Tensor:
        return gaussian_kl_per_dim(q.mu, q.logvar)

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.latent_dim, device=self.anchor.device)
        return zeros, zeros + 1.0


class MixtureSpec(PriorSpecBase):
    kind: Literal["mixture"]
    components: int = Field(default=10, ge=1, le=1000, description="K, the diagonal Gaussians in the mixture")
    spread: float = Field(default=1.0, gt=0.0, le=100.0, description="std of the components' initial means")


@PRIORS.register("mixture")
class GaussianMixture(Prior):
    """A learned mixture of K diagonal Gaussians, sum_k pi_k N(mu_k, diag(sigma_k^2)).

    Its KL against a Gaussian posterior has no closed form: the ELBO uses log q(z|x) - log p(z) at
    the sampled z, an unbiased single-sample estimate.
    """

    Spec: ClassVar = MixtureSpec
    closed_form_kl = False

    def __init__(self, *, latent_dim: int, components: int, spread: float) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(spread * torch.randn(components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))

    def _log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, dim=0)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        per_component = gaussian_log_density(z.unsqueeze(-2), self.means, self.logvars).sum(-1)  # (..., K)
        return torch.logsumexp(per_component + self._log_weights(), dim=-1)

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        per_component = gaussian_log_density(z.unsqueeze(-2), self.means, self.logvars)  # (..., K, D)
        return torch.logsumexp(per_component + self._log_weights().unsqueeze(-1), dim=-2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = _noise_device(generator, self.means.device)
        probs = torch.softmax(self.logits.detach(), dim=0).to(device)
        component = torch.multinomial(probs, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, device=device)
        means, logvars = self.means.detach().to(device), self.logvars.detach().to(device)
        return means[component] + torch.exp(0.5 * logvars[component]) * eps

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.logits, dim=0).unsqueeze(-1)  # (K, 1)
        mean = (weights * self.means).sum(0)
        second = (weights * (self.logvars.exp() + self.means.square())).sum(0)
        return mean.detach(), (second - mean.square()).clamp_min(0).sqrt().detach()
