"""The linear probe: how much of the labels a linear classifier reads off the posterior means; and a
semi-supervised model's own classifier q(y|x), judged by its test error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from vaezoo.model.vae import VAE


def probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    classes: int,
    weight_decay: float = 1e-4,
) -> float:
    """Test accuracy of a linear softmax classifier fitted (L-BFGS, L2 penalty) on standardized features."""
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    weight, bias = fit_probe((train_features - mean) / std, train_labels, classes, weight_decay)
    with torch.inference_mode():
        predicted = (weight @ ((test_features - mean) / std).T.double() + bias[:, None]).argmax(0)
        return (predicted == test_labels).double().mean().item()


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, classes: int, weight_decay: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C, D), bias (C,)), float64, minimizing the mean cross-entropy + weight_decay * ||weight||^2.

    The problem is convex, so L-BFGS from zero reaches the same optimum from any start. The logits are
    held as (C, N): a softmax over a short leading axis runs along contiguous rows of N, about three
    times faster on a CPU than over a trailing axis of 10 (what F.cross_entropy's layout needs).
    """
    # float64 so that L-BFGS converges to the optimum rather than stalling on float32 rounding; and
    # outside inference mode, so that autograd may save these for backward
    x = features.T.double()
    onehot = F.one_hot(labels, classes).T.to(x.dtype)
    weight = torch.zeros(classes, x.shape[0], device=x.device, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(classes, 1, device=x.device, dtype=x.dtype, requires_grad=True)
    with torch.enable_grad():
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            log_p = torch.log_softmax(weight @ x + bias, dim=0)
            loss = -(log_p * onehot).sum() / x.shape[1] + weight_decay * weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return weight.detach(), bias.detach().squeeze(1)


@torch.inference_mode()
def classification_error(model: VAE, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """The share of `images` whose argmax of q(y|x) (a semi-supervised model's classifier) is not its label."""
    model.eval()
    wrong = torch.zeros((), dtype=torch.long, device=images.device)
    for batch, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        wrong += (model.classify(batch).argmax(-1) != y).sum()
    return wrong.item() / len(images)
