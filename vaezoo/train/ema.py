"""An exponential moving average of a model's parameters (Polyak averaging), for evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """avg_t = decay * avg_{t-1} + (1 - decay) * theta_t after every optimizer step, per parameter.

    The average starts from the initial weights, so it forgets them over about 1 / (1 - decay)
    steps (1,000 at 0.999: under three epochs of MNIST at batch 128). Buffers are not averaged:
    no part keeps running statistics.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.names, self.params = zip(*model.named_parameters(), strict=True)
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the current weights (device ops only, so a CUDA graph can capture it)."""
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.average, strict=True))

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        check_names(state, self.names)
        for name, tensor in zip(self.names, self.average, strict=True):
            tensor.copy_(state[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own weights again after it."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.params]
            torch._foreach_copy_([p.detach() for p in self.params], self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in self.params], trained)


@torch.no_grad()
def load_averaged(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put a saved average (WeightAverage.state_dict) into the model's parameters, for evaluation."""
    named = dict(model.named_parameters())
    check_names(state, tuple(named))
    for name, param in named.items():
        param.copy_(state[name])


def check_names(state: dict[str, torch.Tensor], names: tuple[str, ...]) -> None:
    if set(state) != set(names):
        missing, extra = sorted(set(names) - set(state)), sorted(set(state) - set(names))
        raise ValueError(f"the weight average does not fit the model (missing {missing[:3]}, unexpected {extra[:3]})")
