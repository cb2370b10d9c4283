"""The VQ-VAE's posterior (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural discrete representation
learning"): a point mass at the codebook vectors nearest the encoder's output.

The features give z_e (N * D values, a linear head); each of its N blocks of D values is replaced by the
nearest vector of the codebook prior it is handed (`vaezoo.parts.codebook`, whose `quantize` also moves
the codebook by EMA while training), with the straight-through gradient z = z_e + sg(e - z_e): the
decoder reads e, and its gradient at z reaches z_e unchanged. q(c|x) is a point mass at the nearest codes
c*, so log q = 0 and the one-sample KL log q - log p(c*) = -log p(c*) is the exact KL; its gradient
trains only the prior's autoregressive mass.

The commitment loss beta_c ||z_e - sg(e)||^2 (summed over the latent's values per image; beta_c = 0.25
in the paper) is not part of the bound: it is the sample's `penalty`, which the `elbo` objective adds
to the loss and the reported -ELBO leaves out (the spec refuses an objective that would drop it).

The test NLL: importance sampling cannot tighten a point mass's bound (every weight is the same), so the
reported "NLL" is -log p(x | e_c*) - log p(c*) at the encoder's codes c*, the -ELBO itself: an upper bound
on -log p(x) of the model p(c) p(x | e_c), which results label as such (`nll_note`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import torch
from pydantic import Field
from torch import nn

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.parts.posteriors import POSTERIORS, Posterior, PosteriorSample

if TYPE_CHECKING:
    from vaezoo.parts.priors import Prior

#: What results print beside a VQ-VAE's NLL.
VQ_NLL_NOTE = (
    "an upper bound: -log p(x|e_c) - log p(c) at the encoder's code c (the posterior is a point mass, so "
    "importance sampling cannot tighten it)"
)


class Quantizer(Protocol):
    """What the VQ posterior needs of its prior: the nearest codebook entries (`CodebookPrior.quantize`)."""

    def quantize(self, z_e: torch.Tensor, update: bool) -> tuple[torch.Tensor, torch.Tensor]: ...


class VQSpec(StrictModel):
    kind: Literal["vq"]
    commitment: float = Field(
        default=0.25, ge=0.0, le=100.0, description="beta_c of the commitment loss beta_c ||z_e - sg(e)||^2"
    )


@POSTERIORS.register("vq")
class VQPosterior(Posterior):
    """A point mass at the codebook vectors nearest z_e = head(features), straight-through to z_e."""

    Spec: ClassVar = VQSpec
    is_base_gaussian = False
    space = "codebook"
    penalized = True
    nll_note = VQ_NLL_NOTE
    model_title = "VQ-VAE"

    def __init__(self, *, in_features: int, latent_dim: int, commitment: float) -> None:
        super().__init__()
        self.commitment = commitment
        self.head = nn.Linear(in_features, latent_dim)

    def distribution(self, features: torch.Tensor) -> DiagonalGaussian:
        """The encoder's output z_e before quantization, as a point mass (variance 0), (B, N * D) each."""
        z_e = self.head(features)
        return point_mass(z_e)

    def encode(self, features: torch.Tensor, prior: Prior) -> DiagonalGaussian:
        """q(z|x): the point mass at the nearest codebook vectors e_c* (variance 0), (B, N * D) each. The
        latent statistics read the codes c* back from these vectors (`CodebookPrior.one_hot`)."""
        _, vectors = quantizer(prior).quantize(self.head(features), update=False)
        return point_mass(vectors)

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        """z = z_e + sg(e_c* - z_e) (every one of `samples` draws the same), log q = 0, and the commitment
        penalty per image; in training (`self.training`) the prior's codebook takes the batch's EMA step."""
        z_e = self.head(features)
        _, vectors = quantizer(prior).quantize(z_e, update=self.training)
        z = z_e + (vectors - z_e).detach()
        penalty = self.commitment * (z_e - vectors).square().sum(-1)
        if samples is not None:
            z = z.expand(samples, *z.shape)
        base = point_mass(vectors)
        return PosteriorSample(z=z, log_q=z.new_zeros(z.shape[:-1]), base=base, penalty=penalty)


def point_mass(at: torch.Tensor) -> DiagonalGaussian:
    """The point mass at `at` as a diagonal Gaussian of variance 0 (log-variance -inf)."""
    return DiagonalGaussian(at, torch.full_like(at, -torch.inf))


def quantizer(prior: Prior | None) -> Quantizer:
    """The prior as a quantizer; TypeError for a prior without a codebook (the spec pairs vq only with one)."""
    if prior is None or not hasattr(prior, "quantize"):
        raise TypeError("the vq posterior quantizes with a codebook prior, handed to it by Latent.draw and encode")
    return prior  # type: ignore[return-value]
