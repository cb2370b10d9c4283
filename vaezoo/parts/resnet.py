"""ResNet encoder and decoder, after the ResNet VAE of the IAF paper (Kingma et al. 2016).

Both run a stack of stages, one per entry of `channels`: each stage is `blocks` residual blocks at one
resolution. The encoder halves the side between stages with a stride-2 convolution; the decoder
retraces the encoder's sides exactly (28 -> 14 -> 7 and back for MNIST; odd sides too) with stride-2
transposed convolutions. Channels change only at those resampling convolutions, so every block's skip
is the identity and the residual stream carries the input through unchanged.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from vaezoo.core.schema import StrictModel
from vaezoo.parts.decoders import DECODERS, FeatureMapDecoder, _transposed
from vaezoo.parts.encoders import ENCODERS, Encoder
from vaezoo.parts.layers import ACTIVATIONS, OutputBias, Sizes, conv_padding, conv_sides

KERNEL = 3  # every convolution; 3x3 with padding 1 keeps the side inside a stage
STRIDE = 2  # between stages: the side goes to ceil(side / 2), which a 3x3 transposed conv can retrace


class ResNetSpec(StrictModel):
    """Residual stages through `channels`, the side halved before every stage after the first; the
    decoder runs the same list in reverse (a mirror)."""

    kind: Literal["resnet"]
    channels: Sizes = [32, 64]  # noqa: RUF012 (pydantic copies a field's default)
    blocks: Annotated[int, Field(ge=1, le=8, description="residual blocks per stage")] = 2
    activation: Literal["elu", "gelu", "relu"] = "elu"


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))), both convolutions 3x3 at the input's width and side.

    The activations come before each convolution (a pre-activation block), so the skip adds the input
    itself: a block whose last convolution is zero is exactly the identity.
    """

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        padding = conv_padding(KERNEL)
        self.body = nn.Sequential(
            ACTIVATIONS[activation](),
            nn.Conv2d(channels, channels, KERNEL, padding=padding),
            ACTIVATIONS[activation](),
            nn.Conv2d(channels, channels, KERNEL, padding=padding),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _stage(channels: int, blocks: int, activation: str) -> list[nn.Module]:
    return [ResidualBlock(channels, activation) for _ in range(blocks)]


@ENCODERS.register("resnet")
class ResNetEncoder(Encoder):
    """A 3x3 convolution into `channels[0]`, then the stages (a stride-2 convolution into the next
    width before each one after the first), a final activation, flattened."""

    Spec: ClassVar = ResNetSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        channels: list[int],
        blocks: int,
        activation: Literal["elu", "gelu", "relu"],
    ) -> None:
        in_channels, side, _ = image_shape
        last_side = conv_sides(side, len(channels) - 1, KERNEL, STRIDE)[-1]
        padding = conv_padding(KERNEL)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], KERNEL, padding=padding)]
        layers += _stage(channels[0], blocks, activation)
        for c_in, c_out in itertools.pairwise(channels):
            layers.append(nn.Conv2d(c_in, c_out, KERNEL, STRIDE, padding))
            layers += _stage(c_out, blocks, activation)
        # the residual stream is linear; the posterior's layer reads activated features, as from the other encoders
        features = nn.Sequential(*layers, ACTIVATIONS[activation](), nn.Flatten())
        super().__init__(features, channels[-1] * last_side * last_side)


@DECODERS.register("resnet")
class ResNetDecoder(FeatureMapDecoder):
    """The ResNet encoder mirrored: a linear layer from z to the smallest feature map (`channels[-1]`
    wide), the stages in reverse with a stride-2 transposed convolution up to the next side and width
    after each but the last, then an activation and a 3x3 convolution to the likelihood's parameters.

    Each transposed convolution's output padding is chosen so that the sides retrace the encoder's
    exactly and the output ends at the input size (28x28 for MNIST).
    """

    Spec: ClassVar = ResNetSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        params_per_pixel: int,
        channels: list[int],
        blocks: int,
        activation: Literal["elu", "gelu", "relu"],
    ) -> None:
        super().__init__()
        image_channels, side, _ = image_shape
        sides = conv_sides(side, len(channels) - 1, KERNEL, STRIDE)[::-1]  # smallest first
        widths = channels[::-1]
        self.start_shape = (widths[0], sides[0], sides[0])
        # no activation after the projection: each block activates its own input, and the stream stays linear
        self.project = nn.Linear(latent_dim, widths[0] * sides[0] ** 2)
        layers: list[nn.Module] = _stage(widths[0], blocks, activation)
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            layers.append(_transposed(c_in, c_out, KERNEL, STRIDE, sides[i], sides[i + 1]))
            layers += _stage(c_out, blocks, activation)
        out_channels = params_per_pixel * image_channels
        padding = conv_padding(KERNEL)
        layers += [ACTIVATIONS[activation](), nn.Conv2d(widths[-1], out_channels, KERNEL, padding=padding, bias=False)]
        self.net = nn.Sequential(*layers)
        self.output = OutputBias((out_channels, *image_shape[1:]))
