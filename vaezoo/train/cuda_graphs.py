"""The training step replayed from captured CUDA graphs.

A small VAE's step is some hundred tiny kernels. Launched one by one from Python, a GPU spends
most of the step waiting for the next launch; replayed from a graph, the launches cost one call.
Replay runs the very kernels an eager step runs, with the same random streams (both generators
are registered with the graph), so it trains the same model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch.cuda.graph requires


class StepRunner(Protocol):
    def __call__(self, index: torch.Tensor, step: int, beta: float) -> None:
        """One optimizer step on the training images at `index`, the `step`-th of the run, with KL weight `beta`."""
        ...


@dataclass
class GraphState:
    """What a step declares a captured graph of it reads and updates: the model, the optimizer, the
    generator of its data noise, and the device tensors it accumulates into (the epoch's sums, the
    first bad step, the scalars' window, a weight average)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    device: torch.device
    accumulators: list[torch.Tensor] = field(default_factory=list)


class CapturableStep(StepRunner, Protocol):
    def graph_state(self) -> GraphState:
        """The state a graph of this step holds (see GraphState)."""
        ...


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    index: torch.Tensor  # the static index buffer the graph reads its batch through


@dataclass
class _Snapshot:
    """Everything a warm-up step changes, so that capturing leaves the run exactly where it was."""

    model: dict[str, torch.Tensor]
    optimizer: dict[torch.Tensor, dict[str, torch.Tensor]]
    accumulators: list[torch.Tensor]
    data_rng: torch.Tensor
    cuda_rng: torch.Tensor

    @classmethod
    def take(cls, state: GraphState) -> _Snapshot:
        optimizer_state = {
            param: {key: value.clone() for key, value in values.items() if isinstance(value, torch.Tensor)}
            for param, values in state.optimizer.state.items()
        }
        return cls(
            model={key: value.clone() for key, value in state.model.state_dict().items()},
            optimizer=optimizer_state,
            accumulators=[tensor.clone() for tensor in state.accumulators],
            data_rng=state.generator.get_state(),
            cuda_rng=torch.cuda.get_rng_state(state.device),
        )

    def restore(self, state: GraphState) -> None:
        """Copy back in place: the graph holds these very tensors."""
        with torch.no_grad():
            for key, value in state.model.state_dict().items():
                value.copy_(self.model[key])
            for param, values in state.optimizer.state.items():
                saved = self.optimizer.get(param, {})
                for key, value in values.items():
                    if isinstance(value, torch.Tensor):
                        if key in saved:
                            value.copy_(saved[key])
                        else:  # the warm-up created this state: zeros are Adam's fresh state
                            value.zero_()
            for tensor, saved_tensor in zip(state.accumulators, self.accumulators, strict=True):
                tensor.copy_(saved_tensor)
        state.generator.set_state(self.data_rng)
        torch.cuda.set_rng_state(self.cuda_rng, state.device)


class CapturedStep:
    """Runs `step` by replaying a CUDA graph, one captured per batch size on first use.

    The step number and beta reach the graph through device scalars, the batch through a static
    index buffer. If a component cannot be captured (it syncs with the host, say), the run warns
    once and goes on eagerly.
    """

    def __init__(self, step: CapturableStep) -> None:
        self.step = step
        self.state = step.graph_state()
        device = self.state.device
        self.step_t = torch.zeros((), dtype=torch.long, device=device)
        self.beta_t = torch.zeros((), dtype=torch.float32, device=device)
        self._beta: float | None = None
        self.graphs: dict[int, _Graph] = {}
        self.eager = False

    def __call__(self, index: torch.Tensor, step: int, beta: float) -> None:
        if self.eager:
            self.step(index, step, beta)
            return
        if beta != self._beta:
            self.beta_t.fill_(beta)
            self._beta = beta
        self.step_t.fill_(step)
        captured = self.graphs.get(len(index)) or self._capture(len(index))
        if captured is None:
            self.step(index, step, beta)
            return
        captured.index.copy_(index)
        captured.graph.replay()

    def _capture(self, size: int) -> _Graph | None:
        step = self.step
        index = torch.zeros(size, dtype=torch.long, device=self.step_t.device)
        snapshot = _Snapshot.take(self.state)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    step(index, self.step_t, self.beta_t)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(self.state.generator)
            self.state.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                step(index, self.step_t, self.beta_t)
        except RuntimeError as error:
            warnings.warn(f"CUDA graph capture failed ({str(error).splitlines()[0]}); training eagerly", stacklevel=2)
            torch.cuda.synchronize()
            snapshot.restore(self.state)
            self.eager = True
            return None
        snapshot.restore(self.state)
        self.graphs[size] = _Graph(graph, index)
        return self.graphs[size]
