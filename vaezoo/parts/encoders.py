"""Encoders: an image batch in, a feature vector per image out; the posterior reads the features."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from vaezoo.core.registry import Registry
from vaezoo.parts.layers import ACTIVATIONS, Activation, ConvSpec, MLPSpec, conv_padding, conv_sides, mlp


class Encoder(nn.Module):
    """Maps x of shape (B, C, H, W) to features (B, out_features)."""

    def __init__(self, features: nn.Module, out_features: int) -> None:
        super().__init__()
        self.features = features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


ENCODERS: Registry[type[Encoder]] = Registry("encoder")


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    """Fully connected: flatten, then the hidden layers."""

    Spec: ClassVar = MLPSpec

    def __init__(self, *, image_shape: tuple[int, int, int], hidden: list[int], activation: Activation) -> None:
        n_pixels = image_shape[0] * image_shape[1] * image_shape[2]
        features = nn.Sequential(nn.Flatten(), mlp([n_pixels, *hidden], activation))
        super().__init__(features, hidden[-1])


@ENCODERS.register("conv")
class ConvEncoder(Encoder):
    """Strided convolutions (each followed by the activation), flattened."""

    Spec: ClassVar = ConvSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        channels: list[int],
        kernel: int,
        stride: int,
        activation: Activation,
    ) -> None:
        in_channels, side, _ = image_shape
        last_side = conv_sides(side, len(channels), kernel, stride)[-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels], channels):
            layers += [nn.Conv2d(c_in, c_out, kernel, stride, conv_padding(kernel)), ACTIVATIONS[activation]()]
        features = nn.Sequential(*layers, nn.Flatten())
        super().__init__(features, channels[-1] * last_side * last_side)
