"""Discrete latents by the Gumbel-softmax relaxation (Jang, Gu & Poole 2017, "Categorical
reparameterization with Gumbel-softmax"; Maddison, Mnih & Teh 2017, "The Concrete distribution").

The latent is N categorical variables c_n of K categories, laid out as N one-hot blocks of K values
(`model.latent_dim` = N * K; the prior's spec says K, `vaezoo.model.latent.LatentLayout.categories`).

- `gumbel` (posterior): q(c|x) = prod_n Cat(softmax(l_n)), its logits l a linear function of the
  features. In training the decoder reads the relaxed draw y_n = softmax((l_n + g_n) / tau), g_n Gumbel
  noise (with `straight_through`, the hard one-hot forward and y's gradient backward, the paper's ST
  variant); tau = max(min_temperature, temperature * exp(-anneal_rate * step)), as in the paper's code
  (which steps it every 1000 updates; here every update). In evaluation (`model.eval()`) it reads the
  hard code c = one-hot(argmax(l_n + g_n)), a Gumbel-max draw, distributed exactly as q(c|x).
- `categorical` (prior): p(c) = prod_n Cat(softmax(a_n)), uniform (a = 0) or with learned logits a.

Which model the numbers are of: the discrete one, p(c) p(x|c) with the decoder reading hard codes.
log q and log p are the categorical masses at the code c a draw stands for (its argmax: the same
noise's Gumbel-max draw), so the ELBO's KL, analytic (KL(q(c|x) || p(c)) in closed form, a sum over
categories: the paper's) or one-sample (log q(c|x) - log p(c)), is the discrete model's KL, and the
importance-weighted NLL at hard draws is a bound on -log p(x) of the discrete model. Training is the
paper's surrogate: the reconstruction term decodes the relaxation, whose gradient is biased for the
discrete model, and a one-sample or importance-weighted log q - log p passes no gradient through c's
choice (no score-function term): the analytic KL with the plain ELBO is the estimator to train with.
The relaxed model's own KL, between Concrete densities, is not used.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from vaezoo.core.schema import StrictModel
from vaezoo.model.distributions import CategoricalCode, categorical_kl, one_hot_log_mass
from vaezoo.parts.posteriors import POSTERIORS, Posterior, PosteriorSample
from vaezoo.parts.priors import PRIORS, Prior, PriorSpecBase

if TYPE_CHECKING:
    from vaezoo.model.distributions import DiagonalGaussian


def gumbel_noise(shape: torch.Size, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel draws -log(-log U), U ~ Uniform(0, 1), drawn on the generator's device (else
    `like`'s) and moved to `like`'s."""
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - torch.finfo(like.dtype).eps)))


def concrete_log_density(y: torch.Tensor, logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log of the Concrete (relaxed one-hot categorical) density at y on the simplex, (..., K) -> (...):
    log (K-1)! + (K-1) log tau + sum_k (l_k - (tau + 1) log y_k) - K logsumexp_k (l_k - tau log y_k)
    (Maddison et al. 2017, eq. 12). What a relaxed model's KL would read; the ELBO here does not."""
    k = y.shape[-1]
    log_y = y.log()
    return (
        math.lgamma(k)
        + (k - 1) * math.log(temperature)
        + (logits - (temperature + 1) * log_y).sum(-1)
        - k * torch.logsumexp(logits - temperature * log_y, dim=-1)
    )


class GumbelSpec(StrictModel):
    kind: Literal["gumbel"]
    temperature: float = Field(default=1.0, gt=0.0, le=100.0, description="tau at step 0")
    min_temperature: float = Field(default=0.5, gt=0.0, le=100.0, description="tau's floor as it anneals")
    anneal_rate: float = Field(
        default=3e-5, ge=0.0, le=1.0, description="r in tau = max(floor, tau_0 exp(-r step)); 0 keeps tau fixed"
    )
    straight_through: bool = Field(
        default=False, description="decode the hard one-hot code in training too, with the relaxation's gradient"
    )


@POSTERIORS.register("gumbel")
class GumbelPosterior(Posterior):
    """q(c|x) over N categorical variables of K categories; relaxed draws in training, hard in evaluation."""

    Spec: ClassVar = GumbelSpec
    is_base_gaussian = False
    space = "categorical"
    model_title = "Gumbel-softmax VAE"

    def __init__(
        self,
        *,
        in_features: int,
        latent_dim: int,
        categories: int,
        temperature: float,
        min_temperature: float,
        anneal_rate: float,
        straight_through: bool,
    ) -> None:
        super().__init__()
        self.categories = categories
        self.temperature0, self.min_temperature, self.anneal_rate = temperature, min_temperature, anneal_rate
        self.straight_through = straight_through
        self.head = nn.Linear(in_features, latent_dim)
        # set before every training step (`set_step`), so not saved: a resumed run sets it again
        self.register_buffer("step", torch.zeros(()), persistent=False)

    @classmethod
    def closed_form_base(cls) -> bool:
        return True  # the reported model is the discrete code, distributed exactly as `distribution` says

    def set_step(self, step: int | torch.Tensor) -> None:
        self.step.copy_(torch.as_tensor(step))

    def temperature(self) -> torch.Tensor:
        """tau at the current step, a device scalar (no host sync under a CUDA graph)."""
        tau = self.temperature0 * torch.exp(-self.anneal_rate * self.step)
        return tau.clamp_min(self.min_temperature)

    def distribution(self, features: torch.Tensor) -> CategoricalCode:
        """q(c|x): each variable's logits, (B, N, K)."""
        return CategoricalCode(self.head(features).unflatten(-1, (-1, self.categories)))

    def rsample(
        self,
        features: torch.Tensor,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        *,
        prior: Prior | None = None,
    ) -> PosteriorSample:
        q = self.distribution(features)
        logits = q.logits if samples is None else q.logits.expand(samples, *q.logits.shape)
        perturbed = logits + gumbel_noise(logits.shape, generator, logits)
        hard = F.one_hot(perturbed.argmax(-1), self.categories).to(logits.dtype)
        if not self.training:
            z = hard
        else:
            relaxed = torch.softmax(perturbed / self.temperature().to(logits.dtype), dim=-1)
            z = hard - relaxed.detach() + relaxed if self.straight_through else relaxed
        z = z.flatten(-2)
        return PosteriorSample(z=z, log_q=one_hot_log_mass(z, q.log_probs), base=q)


class CategoricalSpec(PriorSpecBase):
    kind: Literal["categorical"]
    categories: int = Field(default=10, ge=2, le=4096, description="K, the categories of each variable")
    learned: bool = Field(default=False, description="learn the prior's logits (else uniform over the categories)")

    def categories_per_variable(self) -> int:
        return self.categories


@PRIORS.register("categorical")
class CategoricalPrior(Prior):
    """p(c) = prod_n Cat(softmax(a_n)) over one-hot blocks; a = 0 (uniform) unless learned.

    Its KL against a `CategoricalCode` is closed-form, one value per variable; `marginal_*` are those of
    each one-hot coordinate, Bernoulli(p_nk)."""

    Spec: ClassVar = CategoricalSpec
    closed_form_kl = True
    space = "categorical"

    def __init__(self, *, latent_dim: int, categories: int, learned: bool) -> None:
        super().__init__()
        self.categories = categories
        logits = torch.zeros(latent_dim // categories, categories)
        if learned:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits, persistent=False)

    def log_probs(self) -> torch.Tensor:
        """log p(c_n = k), (N, K)."""
        return torch.log_softmax(self.logits, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return one_hot_log_mass(z, self.log_probs().to(z.dtype))

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        log_p = self.log_probs().flatten().to(z.dtype)
        return z * log_p + (1 - z) * torch.log1p(-log_p.exp().clamp_max(1 - torch.finfo(z.dtype).eps))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = generator.device if generator is not None else self.logits.device
        logits = self.logits.detach().to(device)
        perturbed = logits + gumbel_noise(torch.Size((n, *logits.shape)), generator, logits)
        return F.one_hot(perturbed.argmax(-1), self.categories).to(logits.dtype).flatten(-2)

    def kl(self, q: CategoricalCode | DiagonalGaussian) -> torch.Tensor:
        """KL(q(c_n|x) || p(c_n)) for each variable n, (B, N)."""
        if not isinstance(q, CategoricalCode):
            raise TypeError("the categorical prior's KL is against a CategoricalCode")
        return categorical_kl(q.log_probs, self.log_probs().to(q.logits.dtype))

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.softmax(self.logits.detach(), dim=-1).flatten()
        return p, (p * (1 - p)).sqrt()
