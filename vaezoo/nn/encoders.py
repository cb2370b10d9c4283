"""Encoders q(z|x): an image batch in, the Gaussian posterior's mean and log-variance out."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from vaezoo.nn.layers import ACTIVATIONS, Activation, ConvSpec, MLPSpec, conv_padding, conv_sides, mlp
from vaezoo.registry import Registry


class Encoder(nn.Module):
    """Maps x of shape (B, C, H, W) to (mu, logvar), each (B, latent_dim)."""

    def __init__(self, features: nn.Module, n_features: int, latent_dim: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Linear(n_features, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x)).chunk(2, dim=-1)
        return mu, logvar


ENCODERS: Registry[type[Encoder]] = Registry("encoder")



@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    """Fully connected: flatten, hidden layers, then a linear head to (mu, logvar)."""

    Spec: ClassVar = MLPSpec

    def __init__(
        self, *, image_shape: tuple[int, int, int], latent_dim: int, hidden: list[int], activation: Activation
    ) -> None:
        n_pixels = image_shape[0] * image_shape[1] * image_shape[2]
        features = nn.Sequential(nn.Flatten(), mlp([n_pixels, *hidden], activation))
        super().__init__(features, hidden[-1], latent_dim)



@ENCODERS.register("conv")
class ConvEncoder(Encoder):
    """Strided convolutions (each followed by the activation), flattened into a linear head."""

    Spec: ClassVar = ConvSpec

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        latent_dim: int,
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
        super().__init__(features, channels[-1] * last_side * last_side, latent_dim)
