"""Evaluation under torch.inference_mode in large batches: test ELBO and its terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaezoo.model import VAE

EVAL_NOISE_SEED = 0  # the reparameterization noise of every evaluation, so reruns agree exactly


@dataclass(frozen=True)
class ELBOMeans:
    """Per-image means over a dataset, in nats, with beta = 1."""

    neg_elbo: float
    recon_nll: float
    kl: float


@torch.inference_mode()
def elbo_means(model: VAE, images: torch.Tensor, batch_size: int) -> ELBOMeans:
    """The single-sample ELBO averaged over `images`, with fixed noise so that it is repeatable."""
    model.eval()
    generator = torch.Generator(images.device).manual_seed(EVAL_NOISE_SEED)
    sums = torch.zeros(2, dtype=torch.float64, device=images.device)
    for batch in images.split(batch_size):
        terms = model.elbo(batch, generator=generator)
        sums += torch.stack([terms.recon_nll.sum(), terms.kl.sum()]).double()
    recon, kl = (sums / images.shape[0]).tolist()
    return ELBOMeans(neg_elbo=recon + kl, recon_nll=recon, kl=kl)
