"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), a uniform mixture of the
model's own posterior at K learned pseudo-inputs u_k.

The prior is defined through the model's encoder and posterior, so it needs the assembled VAE: the
VAE hands itself over in `Prior.bind`, and the prior keeps it as a plain attribute, not a submodule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian, gaussian_log_density, log_mixture
from vaezoo.parts.priors import PRIORS, Prior

if TYPE_CHECKING:
    from vaezoo.model.vae import VAE

# The paper's initialization of the pseudo-inputs for MNIST without data (jmtomczak/vae_vampprior,
# utils/load_data.py): every pixel N(0.05, 0.01^2), i.e. nearly blank images.
INIT_MEAN, INIT_STD = 0.05, 0.01
# Elements of the (rows x K) or (rows x K x D) intermediates held at once (32 MiB of float64): the
# importance-sampling estimate asks for log p(z) at tens of thousands of z per call, and the latent
# statistics for each dimension's marginal at every test image, times K = 500 components.
BLOCK_ELEMENTS = 1 << 22


class VampSpec(StrictModel):
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

    The pseudo-inputs need the image shape, which the prior is not built with: `bind` reads it off
    the assembled model and only then creates them (the VAE binds in its constructor, so they exist
    before any optimizer or state dict sees the model). They are stored raw and mapped into [0, 1]
    by a hardtanh, as in the paper's code; the raw values start at N(0.05, 0.01^2).
    """

    Spec: ClassVar = VampSpec
    closed_form_kl = False

    def __init__(self, *, latent_dim: int, pseudo_inputs: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.n_components = pseudo_inputs
        self.register_parameter("raw_pseudo_inputs", None)  # (K, C, H, W) once bound
        # Set past nn.Module.__setattr__: a module-valued attribute would become a submodule, and the
        # encoder's parameters would then appear twice in parameters() and the state dict.
        object.__setattr__(self, "_model", None)

    def bind(self, model: VAE) -> None:
        # A plain attribute inside the model's own module graph: copy.deepcopy(model) memoizes the
        # model before copying its parts, so the copy's prior points at the copy, not the original.
        object.__setattr__(self, "_model", model)
        if self.raw_pseudo_inputs is None:
            shape = _image_shape(model)
            anchor = next(model.decoder.parameters())
            raw = torch.empty(self.n_components, *shape, device=anchor.device, dtype=anchor.dtype)
            self.raw_pseudo_inputs = nn.Parameter(raw.normal_(INIT_MEAN, INIT_STD))

    def _bound(self) -> VAE:
        if self._model is None or self.raw_pseudo_inputs is None:
            raise RuntimeError("the vamp prior is defined through a VAE's encoder: build the VAE around it first")
        return self._model

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs u_k, (K, C, H, W), in [0, 1] like the data the encoder reads."""
        self._bound()
        return F.hardtanh(self.raw_pseudo_inputs, 0.0, 1.0)

    def components(self) -> DiagonalGaussian:
        """q(z | u_k) for every pseudo-input: the posterior's base Gaussians, (K, D) each."""
        model = self._bound()
        return model.posterior.distribution(model.encoder(self.inputs()))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.components()
        log_p = _blockwise(z, self.n_components, lambda rows: log_mixture(rows, mu, logvar))
        return log_p.to(torch.promote_types(z.dtype, torch.float32))

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.components()
        log_k = math.log(self.n_components)

        def per_dimension(rows: torch.Tensor) -> torch.Tensor:
            per_component = gaussian_log_density(rows.unsqueeze(-2), mu, logvar)  # (rows, K, D)
            return torch.logsumexp(per_component, dim=-2) - log_k

        return _blockwise(z, self.n_components * z.shape[-1], per_dimension)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            mu, logvar = self.components()
        device = generator.device if generator is not None else mu.device
        component = torch.randint(self.n_components, (n,), generator=generator, device=device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=device)
        mu, logvar = mu.to(device), logvar.to(device)
        return mu[component] + torch.exp(0.5 * logvar[component]) * eps

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            mu, logvar = self.components()
        mean = mu.mean(0)
        second = (logvar.exp() + mu.square()).mean(0)
        return mean, (second - mean.square()).clamp_min(0).sqrt()


@torch.no_grad()
def _image_shape(model: VAE) -> tuple[int, int, int]:
    """(C, H, W) of the model's images, read off one decoded z: the decoder gives (P * C, H, W) per z
    (`VAE.decode`) and the likelihood says P. The encoder alone cannot tell (an MLP flattens)."""
    anchor = next(model.decoder.parameters())
    params = model.decode(anchor.new_zeros(1, model.latent_dim))
    channels, height, width = params.shape[-3:]
    return channels // model.likelihood.params_per_pixel, height, width


def _blockwise(z: torch.Tensor, per_row: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """fn over the rows of z (any leading shape, D last) in blocks of about BLOCK_ELEMENTS
    intermediates (`per_row` per row), so that memory stays bounded however many z there are;
    fn's per-row output keeps z's leading shape."""
    rows = z.reshape(-1, z.shape[-1])
    block = max(1, BLOCK_ELEMENTS // per_row)
    parts = [fn(chunk) for chunk in rows.split(block)]  # one (empty) block when z has no rows
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.reshape(*z.shape[:-1], *out.shape[1:])
