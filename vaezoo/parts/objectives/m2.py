"""M2's semi-supervised objective (Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning
with deep generative models", eq. 9): the model's label y is latent, a few training images are labelled.

The paper minimizes, over the whole training set of N images (N_l labelled, N_u unlabelled),

    J^alpha = sum_labelled L(x, y) + sum_unlabelled U(x) + alpha * E_labelled[-log q(y|x)],  alpha = 0.1 N,

with L(x, y) the conditional bound's -ELBO on -log p(x, y) and U(x) the bound on -log p(x) with y summed
out (`vaezoo.model.semi_supervised`). Per image (J / N), as the paper's code computes it
(nips14-ssl, learn_yz_x_ss.py: the classification term weighted alpha * N / N_l per labelled image,
the total divided by N), with the batch estimating the unlabelled sum and every labelled image in
every step:

    loss = mean_batch U(x) + (N_l / N) mean_labelled L(x, y) + a * mean_labelled [-log q(y|x)],

where the spec's `alpha` is the paper's alpha / N (0.1). The batch is drawn from all N training
images, the labelled ones among them: their U(x) is a 100 / 50 000 share of the unlabelled sum.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import StrictModel
from vaezoo.model.semi_supervised import enumerate_classes
from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting, Weighted
from vaezoo.parts.objectives.base import OBJECTIVES, Objective

#: The labelled subset's seed: the same images are labelled whatever the run's seed, so that seeds
#: vary the training and not which 100 digits the model is told.
LABELLED_SEED = 20140605


class M2Spec(StrictModel):
    kind: Literal["m2"]
    labelled: int = Field(
        default=100,
        ge=1,
        le=10**7,
        description="the labelled training images, the same number of each class (a multiple of the classes), "
        "chosen with a fixed seed whatever the run's",
    )
    alpha: float = Field(
        default=0.1,
        ge=0.0,
        le=1e6,
        description="the classification loss's weight per image: the paper's alpha / N (its alpha = 0.1 N, eq. 9, "
        "multiplies an expectation over the labelled pairs inside a sum over all N images), so the loss per "
        "image is mean U(x) + (N_l/N) mean L(x, y) + alpha * mean -log q(y|x), the means over the batch and "
        "over the labelled images",
    )


def uneven_labels(labelled: int, classes: int) -> str | None:
    """Why `labelled` images cannot be the same number of each of `classes` classes, or None when they can."""
    if labelled % classes:
        return f"labelled {labelled} is not a multiple of the {classes} classes (the same number of each)"
    return None


@OBJECTIVES.register("m2")
class M2(Objective):
    """-U(x) on the batch, the labelled images' -ELBO of p(x, y) and their classification loss (eq. 9).

    The reported terms are the batch's -U(x): `recon_nll` the reconstruction expected under q(y|x),
    `kl` its KL(q(z|x, y) || p(z)) expected under q(y|x) plus KL(q(y|x) || p(y)). A plain beta scales
    both KLs (in U and in L); other weightings' penalties are not linear in a KL that is a mixture.
    """

    Spec: ClassVar = M2Spec
    model_title: ClassVar[str] = "M2 semi-supervised VAE"
    loss_title: ClassVar[str] = (
        "the M2 objective (eq. 9: unlabelled and labelled bounds with the labelled images' classification loss)"
    )
    is_bound: ClassVar[bool] = False  # the classification term is no part of a bound on -log p(x)
    needs_dataset_size: ClassVar[bool] = True
    semi_supervised: ClassVar[bool] = True

    @classmethod
    def accepts(cls, weighting: type[KLWeighting]) -> bool:
        return issubclass(weighting, Weighted)

    @classmethod
    def refuses_classes(cls, spec: M2Spec, classes: int) -> str | None:
        return uneven_labels(spec.labelled, classes)

    def __init__(self, *, labelled: int, alpha: float, dataset_size: int) -> None:
        self.labelled, self.alpha, self.dataset_size = labelled, alpha, dataset_size

    def labelled_subset(self, train_labels: torch.Tensor, classes: int) -> torch.Tensor:
        """`labelled` / `classes` images of each class, chosen with LABELLED_SEED, on the labels' device;
        a SpecError where `labelled` is no multiple of the classes or a class has too few images."""
        labels = train_labels.cpu()
        uneven = uneven_labels(self.labelled, classes)
        if uneven is not None:
            raise SpecError(f"objective: {uneven}")
        per_class = self.labelled // classes
        generator = torch.Generator().manual_seed(LABELLED_SEED)
        chosen = []
        for label in range(classes):
            members = torch.nonzero(labels == label).squeeze(1)
            if len(members) < per_class:
                raise SpecError(
                    f"objective.labelled {self.labelled}: the training split has {len(members)} images of class "
                    f"{label}, fewer than the {per_class} asked of each"
                )
            chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        return torch.cat(chosen).sort().values.to(train_labels.device)

    def terms(
        self,
        model: VAE,
        x: torch.Tensor,
        beta: float,
        weighting: KLWeighting,
        *,
        step: int | torch.Tensor = 0,
        labelled_x: torch.Tensor | None = None,
        labelled_y: torch.Tensor | None = None,
    ) -> ELBOTerms:
        if labelled_x is None or labelled_y is None:
            raise ValueError("the m2 objective needs the labelled images and their labels")
        unlabelled = enumerate_classes(model, x).terms()
        loss = unlabelled.recon_nll + weighting.penalty(unlabelled.kl, None, beta, step=step)
        share = len(labelled_x) / self.dataset_size  # N_l / N
        labelled = self.labelled_loss(model, labelled_x, labelled_y, beta, weighting, step).mean()
        classification = self.classification_loss(model, labelled_x, labelled_y).mean()
        loss = loss + share * labelled + self.alpha * classification
        return ELBOTerms(recon_nll=unlabelled.recon_nll, kl=unlabelled.kl, kl_per_dim=None, beta=beta, loss=loss)

    @staticmethod
    def labelled_loss(
        model: VAE,
        x: torch.Tensor,
        y: torch.Tensor,
        beta: float,
        weighting: KLWeighting,
        step: int | torch.Tensor = 0,
    ) -> torch.Tensor:
        """L(x, y) per labelled image: the conditional -ELBO of p(x|y) (its KL weighted) plus -log p(y) = log C."""
        terms = model.elbo(x, y=y)
        return (
            terms.recon_nll + weighting.penalty(terms.kl, terms.kl_per_dim, beta, step=step) + math.log(model.classes)
        )

    @staticmethod
    def classification_loss(model: VAE, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """-log q(y|x) per labelled image."""
        return F.cross_entropy(model.classify(x).float(), y, reduction="none")
