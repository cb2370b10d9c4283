"""M2 (Kingma, Rezende, Mohamed & Welling 2014): p(y) p(z) p(x|y, z) with the label y a latent class
(uniform p(y)), inferred by q(y|x) q(z|x, y). Its bound on log p(x) sums y out by enumerating every
class, one decoder pass each (the paper's eq. 7):

    U(x) = sum_y q(y|x) [-L(x, y)] + H(q(y|x)),
    -L(x, y) = E_q(z|x,y)[log p(x|y, z) + log p(y) + log p(z) - log q(z|x, y)],

so that -U(x) = sum_y q(y|x) (-log p(x|y, z_y) + KL(q(z|x, y) || p(z))) + KL(q(y|x) || p(y)): the
reported `recon_nll` is the first sum's reconstruction, `kl` the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vaezoo.model.vae import ELBOTerms

if TYPE_CHECKING:
    from vaezoo.model.vae import VAE


@dataclass(frozen=True)
class Enumerated:
    """Each image's q(y|x) and its conditional ELBO's terms at every class y, one z ~ q(z|x, y) each."""

    log_q_y: torch.Tensor  # (B, C): log q(y|x)
    recon_nll: torch.Tensor  # (C, B): -log p(x|y, z)
    kl: torch.Tensor  # (C, B): KL(q(z|x, y) || p(z)), as the model's KL estimate gives it

    @property
    def classes(self) -> int:
        return self.log_q_y.shape[-1]

    def label_kl(self) -> torch.Tensor:
        """KL(q(y|x) || p(y)) with the uniform p(y) = 1/C: sum_y q log q + log C = log C - H(q(y|x)), (B,)."""
        return (self.log_q_y.exp() * self.log_q_y).sum(-1) + math.log(self.classes)

    def terms(self) -> ELBOTerms:
        """-U(x) as ELBO terms (beta = 1): the reconstruction and the KLs, each expected under q(y|x)."""
        q_y = self.log_q_y.exp().T  # (C, B)
        recon = (q_y * self.recon_nll).sum(0)
        kl = (q_y * self.kl).sum(0) + self.label_kl()
        return ELBOTerms(recon_nll=recon, kl=kl, kl_per_dim=None, beta=1.0, loss=recon + kl)


def class_labels(n: int, label: int, device: torch.device) -> torch.Tensor:
    """`n` copies of one class's label on `device` (a fill: no host sync inside a captured graph)."""
    return torch.full((n,), label, dtype=torch.long, device=device)


def enumerate_classes(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None) -> Enumerated:
    """q(y|x) and the conditional ELBO's terms at every class for the batch `x`; the encoder reads x
    once, and each class draws its z in turn from `generator` (class 0 first)."""
    h = model.encoder(x)
    log_q_y = F.log_softmax(model.classify(x).float(), dim=-1)
    recon, kl = [], []
    for label in range(model.classes):
        y = class_labels(len(x), label, x.device)
        draw = model.latent.draw(model.with_label(h, y), generator=generator)
        recon.append(-model.likelihood.log_prob(x, model.decode_latent(draw.z, y)))
        kl.append(model.latent.kl_terms(draw)[0])
    return Enumerated(log_q_y, torch.stack(recon), torch.stack(kl))


def marginal_elbo(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
    """-U(x), the M2 bound on -log p(x) with y summed out, as ELBO terms (beta = 1)."""
    return enumerate_classes(model, x, generator).terms()
