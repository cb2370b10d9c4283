"""Normalizing-flow posteriors: a diagonal Gaussian base pushed through invertible steps.

q(z_K|x) is the density of z_K = f_K(...f_1(z_0)) with z_0 ~ N(mu, diag(exp(logvar))), so by the
change of variables log q(z_K|x) = log N(z_0; mu, exp(logvar)) - sum_k log|det df_k/dz_{k-1}|.
`distribution(features)` is the BASE Gaussian: `VAE.encode`, the figures and the latent
diagnostics (active units, per-dimension KL, mutual information) read its mean and variance, not
the flow's. The ELBO's KL is the one-sample Monte Carlo log q(z|x) - log p(z), so the spec refuses
KL weightings that need a closed-form KL per dimension.

- `planar`: planar flows (Rezende & Mohamed 2015), amortized as in their VAE experiments: one
  linear head reads the encoder's features and gives the base's mu, logvar and every step's (u, w, b).
- `iaf`: inverse autoregressive flow (Kingma et al. 2016): MADE steps over z, each conditioned on a
  context vector h that the same head gives, with the variable order reversed between steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.parts.posteriors import POSTERIORS, Posterior, PosteriorSample

if TYPE_CHECKING:
    from vaezoo.parts.priors import Prior


class FlowPosterior(Posterior):
    """A diagonal Gaussian base whose samples a flow transforms. The base's parameters and the flow's
    (`flow_features` per image) come from one linear head on the encoder's features."""

    is_base_gaussian = False
    code_is_base = False

    def __init__(self, *, in_features: int, latent_dim: int, flow_features: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.head = nn.Linear(in_features, 2 * latent_dim + flow_features)

    def split(self, features: torch.Tensor) -> tuple[DiagonalGaussian, torch.Tensor]:
        """The base Gaussian, (B, D) each, and the flow's per-image parameters, (B, flow_features)."""
        out, d = self.head(features), self.latent_dim
        return DiagonalGaussian(out[..., :d], out[..., d : 2 * d]), out[..., 2 * d :]

    def distribution(self, features: torch.Tensor) -> DiagonalGaussian:
        """The base Gaussian the flow starts from (what `encode` and the figures use), (B, D) each."""
        return self.split(features)[0]

    def flow(self, z0: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_K, sum_k log|det dz_k/dz_{k-1}|) for z0 of shape (B, D) or (S, B, D), params (B, P);
        params broadcast over the leading sample axis."""
        raise NotImplementedError

    def transform(self, z0: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow with its parameters read from `features`: (z_K, total log-determinant)."""
        return self.flow(z0, self.split(features)[1])

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        base, params = self.split(features)
        z0 = base.rsample(samples, generator)
        z, log_det = self.flow(z0, params)
        return PosteriorSample(z=z, log_q=base.log_prob(z0) - log_det, base=base)


class PlanarSpec(StrictModel):
    kind: Literal["planar"]
    steps: int = Field(default=4, ge=1, le=64, description="planar steps K")


@POSTERIORS.register("planar")
class PlanarPosterior(FlowPosterior):
    """K planar steps z_k = z_{k-1} + u_hat tanh(w . z_{k-1} + b), each step's (u, w, b) a linear
    function of the features (amortized, as in Rezende & Mohamed's VAE).

    u_hat = u + (m(w . u) - w . u) w / ||w||^2 with m(a) = -1 + softplus(a) makes w . u_hat > -1, which
    keeps each step invertible: det = 1 + (1 - tanh^2) w . u_hat > 0.
    """

    Spec: ClassVar = PlanarSpec

    def __init__(self, *, in_features: int, latent_dim: int, steps: int) -> None:
        super().__init__(in_features=in_features, latent_dim=latent_dim, flow_features=steps * (2 * latent_dim + 1))
        self.steps = steps

    def flow(self, z0: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.latent_dim
        z, log_det = z0, z0.new_zeros(z0.shape[:-1])
        for step in params.unflatten(-1, (self.steps, 2 * d + 1)).unbind(-2):
            u, w, b = step[..., :d], step[..., d : 2 * d], step[..., 2 * d :]
            wu = (w * u).sum(-1, keepdim=True)
            # w . u_hat = m(w . u) exactly; the clamp only guards ||w|| = 0, where u_hat = u is harmless
            w_norm2 = w.square().sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
            m = F.softplus(wu) - 1
            u_hat = u + (m - wu) * w / w_norm2
            t = torch.tanh((w * z).sum(-1, keepdim=True) + b)
            z = z + u_hat * t
            # det = 1 + (1 - t^2) m(w . u) > 0; rounding can still reach 0 where softplus(w . u) is
            # below the dtype's resolution (bf16's soon) and t ~ 0, so the floor keeps the log finite
            floor = -1 + torch.finfo(m.dtype).eps
            log_det = log_det + torch.log1p(((1 - t.square()) * m).squeeze(-1).clamp_min(floor))
        return z, log_det


class IAFSpec(StrictModel):
    kind: Literal["iaf"]
    steps: int = Field(default=2, ge=1, le=16, description="IAF steps T")
    hidden: int = Field(default=128, ge=1, le=4096, description="hidden units of each step's MADE network")
    context: int = Field(default=32, ge=1, le=1024, description="size of the context h the encoder head gives")


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One IAF step: [m, s] = MADE(z, h), sigma = sigmoid(s), z' = sigma z + (1 - sigma) m,
    log|det| = sum log sigma (the Jacobian is triangular in the step's order, diagonal sigma).

    `order` is the position of each dimension in the autoregressive order: output d depends only on
    the inputs that come before d. Hidden units get degrees 1..D-1 (MADE, Germain et al. 2015); with
    D = 1 they read the context alone.
    """

    def __init__(self, *, latent_dim: int, hidden: int, context: int, order: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("order", order)
        degrees = torch.arange(hidden) % max(latent_dim - 1, 1) + min(latent_dim - 1, 1)
        self.input = MaskedLinear(degrees[:, None] >= order[None, :] + 1)
        self.context = nn.Linear(context, hidden, bias=False)  # h is a function of x only: no mask
        self.middle = MaskedLinear(degrees[:, None] >= degrees[None, :])
        self.output = MaskedLinear((order[:, None] + 1 > degrees[None, :]).repeat(2, 1))
        with torch.no_grad():
            # start near the identity (sigma = sigmoid(2) ~ 0.88, small m): the paper's forget-gate bias
            self.output.weight.mul_(0.01)
            self.output.bias.zero_()
            self.output.bias[latent_dim:] = 2.0

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z', log|det dz'/dz|) for z (..., D) and a context h that broadcasts against it."""
        a = F.elu(self.input(z) + self.context(h))
        m, s = self.output(F.elu(self.middle(a))).chunk(2, dim=-1)
        sigma = torch.sigmoid(s)
        return sigma * z + (1 - sigma) * m, F.logsigmoid(s).sum(-1)


@POSTERIORS.register("iaf")
class IAFPosterior(FlowPosterior):
    """T IAF steps over z, conditioned on a context h that the head gives beside mu and logvar.

    Step t reads the dimensions in reverse order from step t - 1, so that, over the steps, every
    dimension depends on every other. `layers` holds the steps; a step's own ordering is its `order`.
    """

    Spec: ClassVar = IAFSpec

    def __init__(self, *, in_features: int, latent_dim: int, steps: int, hidden: int, context: int) -> None:
        super().__init__(in_features=in_features, latent_dim=latent_dim, flow_features=context)
        forward_order = torch.arange(latent_dim)
        self.layers = nn.ModuleList(
            IAFStep(
                latent_dim=latent_dim,
                hidden=hidden,
                context=context,
                order=forward_order if t % 2 == 0 else forward_order.flip(0),
            )
            for t in range(steps)
        )

    def flow(self, z0: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_det = z0, z0.new_zeros(z0.shape[:-1])
        for step in self.layers:
            z, step_log_det = step(z, params)
            log_det = log_det + step_log_det
        return z, log_det
