"""One training step: the objective's loss on a device-resident batch, backward, clipping, the optimizer
and the running sums, with no host sync."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vaezoo.data import DeviceData
from vaezoo.model.vae import VAE
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives import Objective
from vaezoo.train.cuda_graphs import GraphState
from vaezoo.train.ema import WeightAverage
from vaezoo.train.progress import RunningLoss
from vaezoo.train.scalars import StepWindow, grad_norm


@dataclass
class TrainStep:
    """One optimizer step on the training images at `index`, its losses added to `running`; it declares
    what a CUDA graph of it must hold (`graph_state`), so the graph code reads nothing private."""

    model: VAE
    objective: Objective
    kl_weighting: KLWeighting
    optimizer: torch.optim.Optimizer
    data: DeviceData
    generator: torch.Generator
    running: RunningLoss
    precision: str
    window: StepWindow
    grad_clip: float | None = None
    average: WeightAverage | None = None
    #: a semi-supervised objective's labelled training images (Objective.semi_supervised), chosen once:
    #: a fixed device tensor, so that a captured graph replays the same gather
    labelled: torch.Tensor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.objective.semi_supervised:
            self.labelled = self.objective.labelled_subset(self.data.train_labels, self.model.classes)

    def __call__(self, index: torch.Tensor, step: int | torch.Tensor, beta: float | torch.Tensor) -> None:
        x = self.data.train_batch(index, self.generator)
        self.model.posterior.set_step(step)  # a relaxation's temperature anneals with it
        labels = self.labels(index)
        device_type = x.device.type
        # cache off: a captured graph must recompute the weights' casts on every replay
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16", cache_enabled=False):
            terms = self.objective.terms(self.model, x, beta, self.kl_weighting, step=step, **labels)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.float().mean().backward()
        parameters = list(self.model.parameters())
        if self.grad_clip is not None:  # the norm before clipping is what the scalars log
            norm = torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip)
        else:
            norm = grad_norm(parameters, x.device)
        self.window.add(terms, norm)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self.running.add(terms, step)

    def labels(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the objective reads beside the batch: a conditional objective the batch's labels
        (Objective.conditional), a semi-supervised one its labelled images, binarized as the batch is."""
        if self.labelled is not None:
            images = self.data.train_batch(self.labelled, self.generator)
            return {"labelled_x": images, "labelled_y": self.data.train_labels_at(self.labelled)}
        if self.model.conditional and self.objective.conditional:
            return {"y": self.data.train_labels_at(index)}
        return {}

    def graph_state(self) -> GraphState:
        """What a captured graph of this step reads and updates besides its index, step and beta."""
        average = self.average.average if self.average is not None else []
        return GraphState(
            model=self.model,
            optimizer=self.optimizer,
            generator=self.generator,
            device=self.running.device,
            accumulators=[self.running.sums, self.running.first_bad_step, self.window.sums, *average],
        )
