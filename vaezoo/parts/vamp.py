"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), a uniform mixture of the
model's own posterior at K learned pseudo-inputs u_k.

The prior is defined through the model's encoder and posterior, but holds neither: it owns the
pseudo-inputs (`inputs`), and is a density only `given` the posterior's base Gaussians at them, which
`vaezoo.model.latent.Latent.density` computes (once per call) and hands over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal, NoReturn

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from vaezoo.model.distributions import DiagonalGaussian, gaussian_log_density, log_mixture
from vaezoo.parts.priors import PRIORS, Prior, PriorSpecBase

# The paper's initialization of the pseudo-inputs for MNIST without data (jmtomczak/vae_vampprior,
# utils/load_data.py): every pixel N(0.05, 0.01^2), i.e. nearly blank images.
INIT_MEAN, INIT_STD = 0.05, 0.01
# Elements of the (rows x K) or (rows x K x D) intermediates held at once (32 MiB of float64): the
# importance-sampling estimate asks for log p(z) at tens of thousands of z per call, and the latent
# statistics for each dimension's marginal at every test image, times K = 500 components.
BLOCK_ELEMENTS = 1 << 22


class VampSpec(PriorSpecBase):
    kind: Literal["vamp"]
    pseudo_inputs: int = Field(
        default=500, ge=1, le=5000, description="K, the learned pseudo-inputs whose posteriors the prior mixes"
    )


@PRIORS.register("vamp")
class VampPrior(Prior):
    """p(z) = (1/K) sum_k q(z | u_k) with learned pseudo-inputs u_k in [0, 1] (images like the data).

    The components are the posterior's base diagonal Gaussians (`Posterior.distribution`): with a
    flow posterior the prior mixes the Gaussians the flow starts from, not the flowed densities.
    The KL against the posterior has no closed form: the ELBO uses log q(z|x) - log p(z) at the
    sampled z, and its gradient reaches the pseudo-inputs and, through them, the encoder.

    The density is `given(components)`, a `VampMixture`: the prior's own density members need the
    posterior at the pseudo-inputs, which it does not hold. The pseudo-inputs, (K, C, H, W), are
    stored raw and mapped into [0, 1] by a hardtanh, as in the paper's code; the raw values start at
    N(0.05, 0.01^2).
    """

    Spec: ClassVar = VampSpec
    closed_form_kl = False
    through_posterior = True

    def __init__(self, *, latent_dim: int, pseudo_inputs: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        raw = torch.empty(pseudo_inputs, *image_shape)
        self.raw_pseudo_inputs = nn.Parameter(raw.normal_(INIT_MEAN, INIT_STD))

    @property
    def n_components(self) -> int:
        return self.raw_pseudo_inputs.shape[0]

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs u_k, (K, C, H, W), in [0, 1] like the data the encoder reads."""
        return F.hardtanh(self.raw_pseudo_inputs, 0.0, 1.0)

    def given(self, components: DiagonalGaussian) -> VampMixture:
        """The prior's density for the posterior's base Gaussians q(z | u_k) at `inputs()`, (K, D) each."""
        return VampMixture(*components)

    def _needs_components(self, *_: object, **__: object) -> NoReturn:
        raise TypeError("the VampPrior is a density given the posterior at its pseudo-inputs: use prior.given(...)")

    # the density members of a Prior: without the posterior at the pseudo-inputs there is no density
    log_prob = marginal_log_prob = sample = marginal_moments = _needs_components


class VampMixture:
    """The uniform mixture (1/K) sum_k N(mu_k, diag(exp(logvar_k))) of the posterior's components at
    the pseudo-inputs: the VampPrior's density, once given them."""

    closed_form_kl = False

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu, self.logvar = mu, logvar

    @property
    def n_components(self) -> int:
        return self.mu.shape[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.mu, self.logvar
        log_p = _blockwise(z, self.n_components, lambda rows: log_mixture(rows, mu, logvar))
        return log_p.to(torch.promote_types(z.dtype, torch.float32))

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.mu, self.logvar
        log_k = math.log(self.n_components)

        def per_dimension(rows: torch.Tensor) -> torch.Tensor:
            per_component = gaussian_log_density(rows.unsqueeze(-2), mu, logvar)  # (rows, K, D)
            return torch.logsumexp(per_component, dim=-2) - log_k

        return _blockwise(z, self.n_components * z.shape[-1], per_dimension)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.mu.detach(), self.logvar.detach()
        device = generator.device if generator is not None else mu.device
        component = torch.randint(self.n_components, (n,), generator=generator, device=device)
        eps = torch.randn(n, mu.shape[1], generator=generator, device=device)
        mu, logvar = mu.to(device), logvar.to(device)
        return mu[component] + torch.exp(0.5 * logvar[component]) * eps

    def kl(self, q: DiagonalGaussian) -> torch.Tensor:
        raise NotImplementedError("the VampPrior has no closed-form KL")

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.mu.detach(), self.logvar.detach()
        mean = mu.mean(0)
        second = (logvar.exp() + mu.square()).mean(0)
        return mean, (second - mean.square()).clamp_min(0).sqrt()


def _blockwise(z: torch.Tensor, per_row: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """fn over the rows of z (any leading shape, D last) in blocks of about BLOCK_ELEMENTS
    intermediates (`per_row` per row), so that memory stays bounded however many z there are;
    fn's per-row output keeps z's leading shape."""
    rows = z.reshape(-1, z.shape[-1])
    block = max(1, BLOCK_ELEMENTS // per_row)
    parts = [fn(chunk) for chunk in rows.split(block)]  # one (empty) block when z has no rows
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.reshape(*z.shape[:-1], *out.shape[1:])
