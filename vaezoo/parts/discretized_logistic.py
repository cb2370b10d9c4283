"""A mixture of discretized logistics over the 256 grey levels (Salimans et al. 2017, PixelCNN++),
pixels independent given z: a true probability mass on 8-bit images, so its NLL and bits/dim stand
beside the literature's on grey-level MNIST."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from vaezoo.core.schema import StrictModel
from vaezoo.parts.likelihoods import LIKELIHOODS, Likelihood, sum_pixels

LEVELS = 256
HALF_BIN = 1.0 / (LEVELS - 1)  # grey levels v sit at 2v/255 - 1 in [-1, 1], 2/255 apart
MIN_LOG_SCALE = -7.0


class DiscretizedLogisticSpec(StrictModel):
    kind: Literal["discretized_logistic"]
    mixtures: int = Field(default=5, ge=1, le=32, description="logistic components per pixel")


@LIKELIHOODS.register("discretized_logistic")
class DiscretizedLogistic(Likelihood):
    """P(v) = sum_m pi_m [sigma((x + 1/255 - mu_m) / s_m) - sigma((x - 1/255 - mu_m) / s_m)] with
    x = 2v/255 - 1, the edge levels taking the tails; 3 * mixtures decoder values per pixel
    (mixture logits, means, log-scales)."""

    Spec: ClassVar = DiscretizedLogisticSpec
    discrete = True
    needs_binarize = "none"

    def __init__(self, *, image_shape: tuple[int, int, int], mixtures: int) -> None:
        super().__init__()
        self.mixtures = mixtures
        self.channels = image_shape[0]
        self.params_per_pixel = 3 * mixtures

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log mixture weights, means, log-scales), each (..., M, C, H, W)."""
        parts = params.unflatten(-3, (3, self.mixtures, self.channels))
        logits, means, log_scales = parts.unbind(-5)
        return torch.log_softmax(logits, dim=-4), means, log_scales.clamp(min=MIN_LOG_SCALE)

    def pixel_log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log P(v) for each pixel, with x = v / 255: broadcast shape of x and params' pixels."""
        log_weights, means, log_scales = self._split(params)
        level = torch.round(x * (LEVELS - 1)).unsqueeze(-4)  # (..., 1, C, H, W)
        centered = (2 * level / (LEVELS - 1) - 1) - means
        inv_scale = torch.exp(-log_scales)
        upper, lower = inv_scale * (centered + HALF_BIN), inv_scale * (centered - HALF_BIN)
        # log(sigma(upper) - sigma(lower)) without cancellation: upper > lower always
        inner = upper + torch.log(-torch.expm1(lower - upper)) - F.softplus(upper) - F.softplus(lower)
        bottom = -F.softplus(-upper)  # v = 0 takes everything below its upper edge
        top = -F.softplus(lower)  # v = 255 everything above its lower edge
        log_p = torch.where(level == 0, bottom, torch.where(level == LEVELS - 1, top, inner))
        return torch.logsumexp(log_p + log_weights, dim=-4)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return sum_pixels(self.pixel_log_prob(x, params))

    def initial_params(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Equal mixture weights; every component a logistic with the pixel's mean and standard
        deviation (s = std * sqrt(3) / pi), on the [-1, 1] scale the levels sit on."""
        log_scale = torch.log(2 * std * math.sqrt(3) / math.pi).clamp(min=MIN_LOG_SCALE)
        parts = torch.zeros_like(mean), 2 * mean - 1, log_scale
        return torch.cat([part.expand(self.mixtures, *part.shape).flatten(0, 1) for part in parts])

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[v / 255] = (1/255) sum_k P(v > k), from the mixture's CDF at the 255 bin edges."""
        log_weights, means, log_scales = self._split(params)
        weights, inv_scale = log_weights.exp(), torch.exp(-log_scales)
        total = torch.zeros_like(means[..., 0, :, :, :])
        for k in range(LEVELS - 1):
            edge = 2 * k / (LEVELS - 1) - 1 + HALF_BIN
            total += (weights * torch.sigmoid(-(edge - means) * inv_scale)).sum(-4)
        return total / (LEVELS - 1)
