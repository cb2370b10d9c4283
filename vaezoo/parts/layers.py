"""Building blocks and spec field types shared by encoders and decoders."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from vaezoo.core.schema import StrictModel

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,  # the M1/M2 papers' (Kingma et al. 2014) nonlinearity
}

Activation = Literal["relu", "elu", "gelu", "silu", "tanh", "leaky_relu", "softplus"]
LayerSize = Annotated[int, Field(ge=1, le=65536)]
Sizes = Annotated[list[LayerSize], Field(min_length=1, max_length=16)]
Kernel = Annotated[int, Field(ge=1, le=15)]
Stride = Annotated[int, Field(ge=1, le=4)]


class MLPSpec(StrictModel):
    """Fully connected layers; an encoder reads `hidden` forwards, a decoder as given (list it mirrored)."""

    kind: Literal["mlp"]
    hidden: Sizes = [400]  # noqa: RUF012 (pydantic copies a field's default for every instance)
    activation: Activation = "relu"


class ConvSpec(StrictModel):
    """Strided convolutions through `channels`; the decoder runs the same list in reverse (a mirror)."""

    kind: Literal["conv"]
    channels: Sizes = [32, 64]  # noqa: RUF012 (pydantic copies a field's default)
    kernel: Kernel = 4
    stride: Stride = 2
    activation: Activation = "relu"


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers through `sizes`, each followed by the activation (the last one too)."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def conv_padding(kernel: int) -> int:
    """'Same'-style padding, so a stride-s convolution divides the image side by about s."""
    return (kernel - 1) // 2


def conv_sides(side: int, depth: int, kernel: int, stride: int) -> list[int]:
    """Image side after each of `depth` convolutions, starting with the input side.

    Raises ValueError when the image would shrink to nothing.
    """
    sides = [side]
    for _ in range(depth):
        side = (side + 2 * conv_padding(kernel) - kernel) // stride + 1
        if side < 1:
            raise ValueError(
                f"kernel {kernel} with stride {stride} shrinks the image to nothing after {len(sides) - 1} layers"
            )
        sides.append(side)
    return sides


class OutputBias(nn.Module):
    """A bias for every value the decoder gives, (params_per_pixel * C, H, W), added last.

    Every decoder ends with one, so that the likelihood can set the decoder's starting output to its
    parameters for the training data's mean image (`VAE.init_output`), whatever the decoder's kind:
    a convolution's own bias is one value per channel, too coarse to hold a mean image.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias

    @torch.no_grad()
    def initialize(self, values: torch.Tensor) -> None:
        """Start the bias at `values` (the bias's shape)."""
        self.bias.copy_(values.to(self.bias.device, self.bias.dtype))
