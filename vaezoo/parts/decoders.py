"""Decoders: a latent batch in, the likelihood's parameters out: `params_per_pixel` values for every
pixel, stacked on the channel axis as (..., params_per_pixel * C, H, W)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from torch import nn

from vaezoo.core.registry import Registry
from vaezoo.parts.layers import (
    ACTIVATIONS,
    Activation,
    ConvSpec,
    MLPSpec,
    OutputBias,
    conv_padding,
    conv_sides,
    mlp,
)


class Decoder(nn.Module):
    """z (..., D) -> the likelihood's parameters (..., params_per_pixel * C, H, W). Its last step is
    `output`, the per-value bias that `VAE.init_output` starts at the data's mean image."""

    output: OutputBias


DECODERS: Registry[type[Decoder]] = Registry("decoder")


@DECODERS.register("mlp")
class MLPDecoder(Decoder):
    """Fully connected: hidden layers, then a linear layer to every parameter of every pixel."""

    Spec: ClassVar = MLPSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        params_per_pixel: int,
        hidden: list[int],
        activation: Activation,
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.out_shape = (params_per_pixel * channels, height, width)
        n_out = self.out_shape[0] * height * width
        self.net = nn.Sequential(mlp([latent_dim, *hidden], activation), nn.Linear(hidden[-1], n_out, bias=False))
        self.output = OutputBias(self.out_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.net(z).unflatten(-1, self.out_shape))


class FeatureMapDecoder(Decoder):
    """A decoder that projects z to a small feature map (`project`, to `start_shape`) and grows it to
    the image with convolutions (`net`, whose last layer has no bias of its own), then adds `output`;
    subclasses build the four."""

    project: nn.Module
    start_shape: tuple[int, int, int]
    net: nn.Module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # convolutions take one batch axis: fold importance samples (S, B, D) into it, then restore them
        lead = z.shape[:-1]
        h = self.project(z.reshape(-1, z.shape[-1])).unflatten(-1, self.start_shape)
        out = self.output(self.net(h))
        return out.reshape(*lead, *out.shape[1:])


@DECODERS.register("conv")
class ConvDecoder(FeatureMapDecoder):
    """The conv encoder mirrored: a linear layer to the smallest feature map, then transposed
    convolutions back up through `channels` (read in reverse) to the full image.

    Each transposed convolution's output padding is chosen so that the sides retrace the encoder's
    exactly and the output ends at the input size (28x28 for MNIST).
    """

    Spec: ClassVar = ConvSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        params_per_pixel: int,
        channels: list[int],
        kernel: int,
        stride: int,
        activation: Activation,
    ) -> None:
        super().__init__()
        image_channels, side, _ = image_shape
        out_channels = params_per_pixel * image_channels
        sides = conv_sides(side, len(channels), kernel, stride)[::-1]  # smallest first
        widths = [*channels[::-1], out_channels]
        self.start_shape = (widths[0], sides[0], sides[0])
        self.project = nn.Sequential(nn.Linear(latent_dim, widths[0] * sides[0] ** 2), ACTIVATIONS[activation]())
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            last = i == len(channels) - 1
            layers.append(_transposed(c_in, c_out, kernel, stride, sides[i], sides[i + 1], bias=not last))
            if not last:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.output = OutputBias((out_channels, *image_shape[1:]))


def _transposed(
    c_in: int, c_out: int, kernel: int, stride: int, side_in: int, side_out: int, bias: bool = True
) -> nn.ConvTranspose2d:
    """A transposed convolution that maps side_in to exactly side_out."""
    padding = conv_padding(kernel)
    output_padding = side_out - ((side_in - 1) * stride - 2 * padding + kernel)
    if not 0 <= output_padding < stride:
        raise ValueError(f"kernel {kernel} with stride {stride} cannot retrace side {side_in} -> {side_out}")
    return nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding, bias=bias)
