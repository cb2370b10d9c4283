"""What every training objective shares: the Objective protocol and the registry its kinds fill."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch

from vaezoo.core.registry import Registry
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior
    from vaezoo.parts.priors import Prior


class Objective:
    """What training minimizes: `terms` gives the per-image terms of a batch, `.loss` the minimized one.

    The class attributes say what an objective needs and is: subclasses override what differs.
    """

    #: True when the loss at beta = 1 is a bound on -log p(x) (what the family contract tests check).
    is_bound: ClassVar[bool] = True
    #: True when the constructor takes `dataset_size`, the training split's size (a minibatch estimate
    #: of the aggregate posterior q(z) weighs the batch by it).
    needs_dataset_size: ClassVar[bool] = False
    #: True when `terms` takes `y`, the batch's labels, and so can train a conditional model
    #: (`model.classes`); the training step hands them over only to a conditional model's objective.
    conditional: ClassVar[bool] = False
    #: True when its loss adds the posterior's training penalty (`ELBOTerms.penalty`, VQ-VAE's commitment
    #: loss); the spec refuses a penalized posterior (`Posterior.penalized`) with any other objective.
    adds_penalty: ClassVar[bool] = False
    #: True when the objective trains a classifier q(y|x) of a latent label (`model.classifier`, M2) from
    #: a labelled subset of the training images: the training step chooses it once (`labelled_subset`)
    #: and hands its images and labels to `terms` every step as `labelled_x`, `labelled_y`.
    semi_supervised: ClassVar[bool] = False
    #: What a model trained with it is called in a report's title ("an MLP IWAE with ..."); "VAE" is
    #: the plain ELBO's, which a report calls a beta-VAE where beta is not 1.
    model_title: ClassVar[str] = "VAE"
    #: What training minimizes, as a report's protocol says it ("... of Adam on the IWAE bound").
    loss_title: ClassVar[str] = "the ELBO"

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        """The per-image terms of the objective on a batch; `.loss` is what training minimizes.

        `step` is the run's 0-based optimizer step (a device tensor inside a captured CUDA graph): an
        objective hands it to the KL weighting's penalty, which may move with it (capacity annealing).
        """
        raise NotImplementedError

    def labelled_subset(self, train_labels: torch.Tensor, classes: int) -> torch.Tensor:
        """The indices of the training images whose labels a semi-supervised objective reads."""
        raise NotImplementedError(f"{type(self).__name__} reads no labelled subset")

    @classmethod
    def refuses_classes(cls, spec: Any, classes: int) -> str | None:
        """Why this objective's `spec` cannot work with a model of `classes` labels, or None when it can."""
        return None

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        """Whether this objective can honour the KL weighting's penalty."""
        return True

    @classmethod
    def refuses(cls, prior: type[Prior], posterior: type[Posterior]) -> str | None:
        """Why this objective cannot train a model with this prior and posterior, or None when it can."""
        return None


OBJECTIVES: Registry[type[Objective]] = Registry("objective")
