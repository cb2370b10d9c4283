"""Decoder likelihoods p(x|z): each turns the decoder's output into a per-image log-likelihood."""

from __future__ import annotations

import math
from enum import Enum
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from vaezoo.core.registry import Registry
from vaezoo.core.schema import StrictModel


class NLLKind(str, Enum):
    """What a run's -log p(x) is. Only numbers of one kind compare: a mass on binary images, a mass on
    8-bit images, a continuous density, or no likelihood at all. The values are what metrics.json holds."""

    BINARY_MASS = "log-likelihood of binary images (nats)"
    EIGHT_BIT_MASS = "log-likelihood of 8-bit images (nats)"
    DENSITY = "continuous density (nats)"
    BERNOULLI_ON_GREY = "not a likelihood: Bernoulli BCE on grey levels"

    def __str__(self) -> str:  # the text itself, in f-strings too (Python 3.12 formats a mixin enum by str())
        return self.value

    __format__ = str.__format__

    @property
    def is_likelihood(self) -> bool:
        """False where the number is a loss on data the likelihood does not model (BCE on grey levels)."""
        return self is not NLLKind.BERNOULLI_ON_GREY


class Likelihood(nn.Module):
    """p(x|z) given the decoder's output `params`: `params_per_pixel` values for every pixel, stacked
    along the channel axis as (..., params_per_pixel * C, H, W)."""

    #: True when log_prob is a probability mass, so bits/dim is a real code length.
    discrete: ClassVar[bool]
    #: The binarization the likelihood needs (None: any); the spec refuses other data.
    needs_binarize: ClassVar[str | None] = None
    params_per_pixel: int = 1

    @classmethod
    def nll_kind(cls, binarize: str) -> NLLKind:
        """What -log p(x|z) is on data binarized as `binarize`: a mass, a density, or neither."""
        return NLLKind.BINARY_MASS if binarize != "none" else NLLKind.EIGHT_BIT_MASS

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image in nats, summed over every pixel: shape = the leading batch axes.

        `params` may carry extra leading axes (importance samples) that broadcast against `x`.
        """
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z], for pictures: same shape as `params`, in [0, 1] for image data."""
        raise NotImplementedError

    def initial_params(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """The parameters, (params_per_pixel * C, H, W), that model every pixel on its own as the training
        data's pixel `mean` and `std` (C, H, W) describe: where the decoder's output starts (Burda et
        al.'s code starts the Bernoulli logits at the mean image's log-odds), instead of at p = 0.5."""
        raise NotImplementedError


def sum_pixels(values: torch.Tensor) -> torch.Tensor:
    """Sum over the image axes (channel, height, width), keeping every leading axis."""
    return values.sum(dim=(-3, -2, -1))


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood")

MEAN_CLIP = 1e-3  # the mean image's pixels are clipped to [MEAN_CLIP, 1 - MEAN_CLIP] before their log-odds


class BernoulliSpec(StrictModel):
    kind: Literal["bernoulli"]


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Independent Bernoulli pixels with logits from the decoder (a likelihood for binary images)."""

    Spec: ClassVar = BernoulliSpec
    discrete = True

    @classmethod
    def nll_kind(cls, binarize: str) -> NLLKind:
        if binarize == "none":
            return NLLKind.BERNOULLI_ON_GREY
        return super().nll_kind(binarize)

    def __init__(self, *, image_shape: tuple[int, int, int]) -> None:
        super().__init__()

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        # binary_cross_entropy_with_logits wants equal shapes; x is shared by every importance sample
        x = x.expand_as(params)
        return -sum_pixels(F.binary_cross_entropy_with_logits(params, x, reduction="none"))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def initial_params(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        # a pixel that is 0 in every training image would start at -inf: clip as Burda et al.'s code does
        return torch.logit(mean.clamp(MEAN_CLIP, 1 - MEAN_CLIP))


class GaussianSpec(StrictModel):
    kind: Literal["gaussian"]
    sigma: Literal["fixed", "learned"] = Field(default="fixed", description="fixed value or learned")
    value: float = Field(default=0.1, gt=0.0, le=100.0, description="sigma (fixed) or its initial value (learned)")
    per_pixel: bool = Field(default=True, description="learned: one sigma per pixel, else one shared")
    min_sigma: float = Field(default=1e-3, gt=0.0, le=1.0, description="learned: lower bound on sigma")


@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
    """Independent Gaussian pixels: the decoder gives the mean; sigma is fixed or learned.

    The log-density keeps its constants (-log sigma - log(2 pi)/2 per pixel), so its numbers stand
    beside other likelihoods'; on binary data a learned sigma can shrink toward `min_sigma`.
    """

    Spec: ClassVar = GaussianSpec
    discrete = False

    @classmethod
    def nll_kind(cls, binarize: str) -> NLLKind:
        return NLLKind.DENSITY

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        sigma: Literal["fixed", "learned"],
        value: float,
        per_pixel: bool,
        min_sigma: float,
    ) -> None:
        super().__init__()
        shape = image_shape if (sigma == "learned" and per_pixel) else (1, 1, 1)
        log_sigma = torch.full(shape, math.log(value))
        self.min_log_sigma = math.log(min_sigma) if sigma == "learned" else -math.inf
        if sigma == "learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def _log_sigma(self) -> torch.Tensor:
        return self.log_sigma.clamp(min=self.min_log_sigma)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        log_sigma = self._log_sigma()
        z = (x - params) * torch.exp(-log_sigma)
        return -sum_pixels(0.5 * z.square() + log_sigma + 0.5 * math.log(2 * math.pi))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params.clamp(0.0, 1.0)

    def initial_params(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return mean.clone()  # the decoder gives the mean; sigma starts where the spec says
