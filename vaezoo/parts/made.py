"""A masked autoencoder for distribution estimation (Germain, Gregor, Murray & Larochelle 2015, "MADE")
over N categorical variables of K categories: one pass gives the logits of p(c_n | c_<n) for every n.

Not a registered part: the codebook prior (`vaezoo.parts.codebook`) owns one as its mass over the codes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out, in) on every call."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        # derived from the sizes alone, so not saved: the constructor makes it again
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class CategoricalMADE(nn.Module):
    """logits of p(c_n | c_<n), (..., N, K), from one-hot codes c, (..., N, K), in one pass.

    Variable n (1-based) has degree n; each hidden unit a degree m in 1..N-1, seeing the inputs of degree
    <= m; output n sees the hidden units of degree < n, so it reads only c_<n (output 1 reads nothing:
    its bias is the marginal p(c_1)). The output layer starts at zero: a uniform mass, log K per variable.
    """

    def __init__(self, variables: int, categories: int, hidden: int) -> None:
        super().__init__()
        self.variables, self.categories = variables, categories
        degree_in = torch.arange(1, variables + 1).repeat_interleave(categories)  # (N * K,)
        degree_hidden = torch.arange(hidden) % max(variables - 1, 1) + 1
        self.hidden = MaskedLinear(degree_hidden[:, None] >= degree_in[None, :])
        self.output = MaskedLinear(degree_in[:, None] > degree_hidden[None, :])
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(codes.flatten(-2)))
        return self.output(h).unflatten(-1, (self.variables, self.categories))

    def log_probs(self, index: torch.Tensor) -> torch.Tensor:
        """log p(c_n = k | c_<n) for every n and k, (..., N, K), at the codes `index`, (..., N) integers."""
        dtype = self.output.weight.dtype
        return torch.log_softmax(self(F.one_hot(index, self.categories).to(dtype)), dim=-1)

    def log_mass(self, index: torch.Tensor) -> torch.Tensor:
        """log p(c) = sum_n log p(c_n | c_<n) of the codes `index`, (..., N) integers -> (...)."""
        return torch.gather(self.log_probs(index), -1, index.unsqueeze(-1)).squeeze(-1).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes drawn ancestrally (N passes), (n, N) integers on the network's device; the draws are
        made on the generator's device (else the network's), so a CPU generator gives the same codes
        whatever device the network is on."""
        device = self.output.weight.device
        noise_device = generator.device if generator is not None else device
        index = torch.zeros(n, self.variables, dtype=torch.long, device=device)
        for position in range(self.variables):
            probs = torch.softmax(self.log_probs(index)[:, position].double(), dim=-1).to(noise_device)
            index[:, position] = torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(device)
        return index
