"""The Wasserstein autoencoder with an MMD penalty (Tolstikhin et al. 2018, WAE-MMD): a deterministic
encoder z = mu(x), a reconstruction cost, and lambda times the MMD between the batch's codes and
samples of the prior, in place of the per-image KL.

loss = -log p(x|mu(x)) + lambda * MMD^2(q(z), p(z))

The posterior's variance gets no gradient, so the reported KL, ELBO and importance-weighted NLL
describe a posterior the training never shaped: read them as what they are, not as the model's fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field

from vaezoo.model.vae import VAE, ELBOTerms
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives.base import OBJECTIVES, Objective
from vaezoo.parts.objectives.mmd import Kernel, KernelFields, mmd_squared

if TYPE_CHECKING:
    from vaezoo.parts.posteriors import Posterior
    from vaezoo.parts.priors import Prior


class WAESpec(KernelFields):
    kind: Literal["wae"]
    lam: float = Field(default=10.0, ge=0.0, le=1e6, description="lambda, the MMD's weight (the paper: 10 on MNIST)")


@OBJECTIVES.register("wae")
class WAE(Objective):
    """-log p(x|mu(x)) + lambda * MMD^2 between the batch's codes mu(x) and as many prior draws."""

    Spec: ClassVar = WAESpec
    model_title: ClassVar[str] = "WAE"
    loss_title: ClassVar[str] = "the WAE-MMD objective (reconstruction with an MMD between q(z) and p(z))"
    is_bound: ClassVar[bool] = False

    @classmethod
    def refuses(cls, prior: type[Prior], posterior: type[Posterior]) -> str | None:
        if not posterior.is_base_gaussian:
            return "needs a Gaussian posterior, whose mean is the deterministic code"
        return None

    def __init__(self, *, lam: float, kernel: Kernel, scale: float) -> None:
        self.lam, self.kernel, self.scale = lam, kernel, scale

    def terms(
        self, model: VAE, x: torch.Tensor, beta: float, weighting: KLWeighting, *, step: int | torch.Tensor = 0
    ) -> ELBOTerms:
        draw = model.latent.draw(model.encoder(x))
        code = draw.base.mu
        recon_nll = -model.likelihood.log_prob(x, model.decode_latent(code))
        mmd = mmd_squared(code, model.latent.sample(len(x)).to(code.dtype), self.kernel, self.scale)
        kl, kl_per_dim = model.latent.kl_terms(draw)  # reported only: the posterior's variance is not trained
        loss = recon_nll + self.lam * mmd
        return ELBOTerms(recon_nll=recon_nll, kl=kl, kl_per_dim=kl_per_dim, beta=beta, loss=loss)
