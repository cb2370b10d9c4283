"""The VQ-VAE's prior (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural discrete representation
learning"): a codebook of K vectors e_k in R^D, updated by exponential moving averages (their Appendix
A.1; Sonnet's VectorQuantizerEMA), and a learned autoregressive mass over the codes.

The model is p(c) p(x | e_c): N code positions, each one of the K codebook vectors; z (what the decoder
reads) is the N chosen vectors side by side (`model.latent_dim` = N * D). p(z) is the discrete mass
p(c) = prod_n p(c_n | c_<n) on the codebook's N-tuples, a MADE over the one-hot codes
(`vaezoo.parts.made`); `log_prob(z)` maps z back to its codes (z's value is codebook vectors, so the
nearest entry is exact), `sample(n)` draws codes ancestrally and returns their vectors.

The codebook is not a parameter: the posterior (`vaezoo.parts.vq`) quantizes with `quantize`, which in
training also moves the codebook, under no_grad with in-place tensor ops only (no host sync, no branch
on a value: it runs inside a captured CUDA graph). With n_k the codes' counts in the batch and s_k the
sums of the encoder outputs z_e assigned to code k:
  N_k <- gamma N_k + (1 - gamma) n_k,  m_k <- gamma m_k + (1 - gamma) s_k,
  e_k = m_k / N~_k,  N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j  (Laplace smoothing).
The codebook is refreshed from (N, m) at the start of the next training quantization, not at the end of
this one, so that within a step the codebook that chose the codes also scores them (`log_prob`); the
quantizations see the same sequence of codebooks as Sonnet's. The first training batch initializes the
codebook with K of its z_e (codes started far from every z_e would never be chosen). Codes that stop
being chosen decay towards 0 and may stay unused (dead); the test metrics report the code perplexity.
Codebook, counts and sums are persistent buffers: a checkpoint holds them and resumes them exactly.
"""

from __future__ import annotations

import itertools
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch.nn import functional as F

from vaezoo.model.distributions import CategoricalCode, categorical_kl
from vaezoo.parts.made import CategoricalMADE
from vaezoo.parts.priors import PRIORS, Prior, PriorSpecBase

#: The most codes (K^N) that `marginal_moments` enumerates.
MOMENT_CODES = 2**16


class CodebookSpec(PriorSpecBase):
    kind: Literal["codebook"]
    codes: int = Field(default=64, ge=2, le=4096, description="K, the codebook's vectors")
    code_dim: int = Field(
        default=4, ge=1, le=1024, description="D, each vector's size; model.latent_dim is N * D for N code positions"
    )
    decay: float = Field(default=0.99, gt=0.0, lt=1.0, description="gamma of the codebook's moving averages")
    eps: float = Field(default=1e-5, gt=0.0, le=1.0, description="Laplace smoothing of the averaged code counts")
    hidden: int = Field(default=512, ge=1, le=65536, description="hidden units of the autoregressive prior (MADE)")

    def code_note(self, latent_dim: int) -> str:
        """What the report says of the latent statistics of a codebook latent of `latent_dim` values
        (`LatentLayout.note`); ValueError where they are not whole code positions of `code_dim` values."""
        if latent_dim % self.code_dim:
            raise ValueError(
                f"model.latent_dim {latent_dim} is not a multiple of the codebook's code_dim {self.code_dim} "
                "(N code positions of D values each)"
            )
        return (
            f"{latent_dim // self.code_dim} code positions, each one of {self.codes} codebook vectors of "
            f"{self.code_dim} values, so a 'dimension' here is one position (its KL the test mean of "
            "-log p(c_n | c_<n) under the autoregressive prior, summing to the KL; active when its code varies "
            "over the images by a total one-hot variance above 0.01); the posterior is a point mass, so I(x; c) "
            "is the entropy of the test images' codes"
        )


@PRIORS.register("codebook")
class CodebookPrior(Prior):
    """p(c) over N positions of K codebook vectors, autoregressive (MADE); the codebook moves by EMA.

    Its KL against the VQ posterior's point mass is -log p(c*), taken by Monte Carlo (exact here: q is a
    point mass); its gradient trains only the MADE (the codes are discrete, the codebook no parameter),
    so the plain ELBO fits the prior to the codes by maximum likelihood, jointly with the rest.
    """

    Spec: ClassVar = CodebookSpec
    closed_form_kl = False
    space = "codebook"

    def __init__(self, *, latent_dim: int, codes: int, code_dim: int, decay: float, eps: float, hidden: int) -> None:
        super().__init__()
        self.positions, self.codes, self.code_dim = latent_dim // code_dim, codes, code_dim
        self.decay, self.eps = decay, eps
        self.register_buffer("codebook", torch.zeros(codes, code_dim))
        self.register_buffer("cluster_size", torch.ones(codes))  # N_k
        self.register_buffer("embed_sum", torch.zeros(codes, code_dim))  # m_k = e_k N~_k
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.made = CategoricalMADE(self.positions, codes, hidden)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """The index of the nearest codebook vector (squared Euclidean) of each D-block of z, (..., N), in the
        codebook's precision even under a bf16 autocast: `log_prob` reads back the codes `quantize` chose."""
        blocks = z.detach().unflatten(-1, (self.positions, self.code_dim)).to(self.codebook.dtype)
        with torch.autocast(blocks.device.type, enabled=False):
            cross = blocks @ self.codebook.T
        distances = blocks.square().sum(-1, keepdim=True) - 2 * cross + self.codebook.square().sum(-1)
        return distances.argmin(-1)

    def vectors(self, index: torch.Tensor) -> torch.Tensor:
        """The codebook vectors of codes `index`, (..., N) integers, side by side: (..., N * D)."""
        return F.embedding(index, self.codebook).flatten(-2)

    def quantize(self, z_e: torch.Tensor, update: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes, their vectors) of the encoder outputs z_e, (B, N * D): the nearest codebook entries,
        (B, N) and (B, N * D) (no gradient). With `update` (training) the codebook is first refreshed from
        its moving averages (initialized from this batch the first time), then the averages take this
        batch's assignments."""
        flat = z_e.detach().reshape(-1, self.code_dim).to(self.codebook.dtype)
        with torch.no_grad():
            if update:
                self._refresh(flat)
            index = self.nearest(z_e)
            if update:
                self._accumulate(flat, index.reshape(-1))
            vectors = self.vectors(index).to(z_e.dtype)
        return index, vectors

    def _refresh(self, flat: torch.Tensor) -> None:
        """codebook <- m / N~; before the first update, m and N start at K of the batch's vectors, once each."""
        rows = flat[torch.arange(self.codes, device=flat.device) * len(flat) // self.codes]
        fresh = ~self.initialized
        self.embed_sum.copy_(torch.where(fresh, rows, self.embed_sum))
        self.cluster_size.copy_(torch.where(fresh, torch.ones_like(self.cluster_size), self.cluster_size))
        self.initialized.fill_(True)
        self.codebook.copy_(self.embed_sum / self.smoothed_sizes().unsqueeze(-1))

    def smoothed_sizes(self) -> torch.Tensor:
        """N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j, (K,): no code's count is zero."""
        total = self.cluster_size.sum()
        return (self.cluster_size + self.eps) / (total + self.codes * self.eps) * total

    def _accumulate(self, flat: torch.Tensor, index: torch.Tensor) -> None:
        counts = torch.zeros_like(self.cluster_size).index_add_(0, index, torch.ones_like(index, dtype=flat.dtype))
        sums = torch.zeros_like(self.embed_sum).index_add_(0, index, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)

    def one_hot(self, z: torch.Tensor) -> torch.Tensor:
        """The codes of latents z (codebook vectors side by side) as one-hot blocks, (..., N, K)."""
        return F.one_hot(self.nearest(z), self.codes).to(self.codebook.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(c) of the codes c whose vectors z is, (...,): a gradient reaches the MADE only."""
        return self.made.log_mass(self.nearest(z)).to(z.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents: codes drawn ancestrally from p(c), as their vectors, (n, N * D) on the codebook's device."""
        return self.vectors(self.made.sample(n, generator))

    def kl(self, q: CategoricalCode) -> torch.Tensor:
        """KL(q(c_n|x) || p(c_n | c_<n)) per position, (B, N), with c_<n the mode of q: for the VQ posterior's
        point mass (one-hot q) it is -log p(c*_n | c*_<n), summing to the KL -log p(c*). What the latent
        statistics read per position; the ELBO takes the same KL by Monte Carlo."""
        return categorical_kl(q.log_probs, self.made.log_probs(q.logits.argmax(-1)).to(q.logits.dtype))

    def marginal_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of each coordinate of z under p, (N * D,) each, by enumerating every code (at
        most MOMENT_CODES of them: the traversals that read these do not apply to a codebook latent)."""
        if self.codes**self.positions > MOMENT_CODES:
            raise ValueError(
                f"{self.codes}^{self.positions} codes are too many to enumerate for the prior's marginal moments"
            )
        with torch.no_grad():
            index = torch.tensor(list(itertools.product(range(self.codes), repeat=self.positions)))
            index = index.to(self.codebook.device)
            p = self.made.log_mass(index).double().exp()
            z = self.vectors(index).double()
            mean = p @ z
            var = (p @ z.square() - mean.square()).clamp_min(0)
        return mean.to(self.codebook.dtype), var.sqrt().to(self.codebook.dtype)
