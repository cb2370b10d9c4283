"""The VAE assembled from its parts: encode -> posterior sample -> decode, and its ELBO as typed
per-image terms. Nothing here assumes N(0, I) or a Gaussian posterior: the prior and posterior do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.model.kl_estimate import KLChoice, KLEstimate, kl_estimate
from vaezoo.model.latent import Latent, LatentLayout

if TYPE_CHECKING:  # the parts build on the model's types; the model only calls them
    from vaezoo.parts.likelihoods import Likelihood
    from vaezoo.parts.posteriors import Posterior
    from vaezoo.parts.priors import Prior


@dataclass(frozen=True)
class ELBOTerms:
    """One ELBO evaluation, per image, in nats (summed over pixels and latent dimensions).

    `recon_nll` = -log p(x|z) for one reparameterized z ~ q(z|x); `kl` = KL(q(z|x) || p(z)) as the
    model's `kl_estimate` says: in closed form (then also `kl_per_dim`, (B, D)) or log q(z|x) - log p(z)
    at the same z; `beta` weights the KL in the training loss.
    """

    recon_nll: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor | None
    beta: float | torch.Tensor
    #: What training minimizes per image: -log p(x|z) + beta * KL for the plain ELBO; the objective's
    #: own form otherwise (a free-bits floor on the KL, IWAE's -L_k).
    loss: torch.Tensor
    #: The posterior's training penalty per image outside the bound (`PosteriorSample.penalty`: VQ-VAE's
    #: commitment loss), already in `loss` and never in `neg_elbo`; None for most posteriors.
    penalty: torch.Tensor | None = None

    @property
    def neg_elbo(self) -> torch.Tensor:
        """-ELBO per image (beta = 1 whatever the training beta): an upper bound on -log p(x)."""
        return self.recon_nll + self.kl


class VAE(nn.Module):
    """p(z) p(x|z) with inference q(z|x), from an encoder, posterior, prior, decoder and likelihood.

    Where the posterior meets the prior (the latent's layout, the KL's estimator, drawing z) is
    `self.latent` (`vaezoo.model.latent.Latent`); the parts know nothing of each other or of the model.

    With `classes` > 0 it is a conditional VAE (Sohn et al. 2015), p(x|y, z) p(z) with q(z|x, y): a
    one-hot label y of that many classes is laid beside the encoder's features (what the posterior
    reads) and beside z (what the decoder reads). Its methods take the labels as `y`; where a caller
    gives none (the generic figures and diagnostics, which know no label), the label's input is all
    zero, a "no label" the model was not trained on. An unconditional model ignores `y`.

    With a `classifier` too, it is Kingma et al.'s (2014) M2: y is a latent class with a uniform
    p(y), inferred by q(y|x) = softmax(classifier(x)) (`classify`), and its bounds are of p(x),
    y summed out (`vaezoo.model.semi_supervised`); the objective `m2` trains the classifier.
    """

    def __init__(
        self,
        encoder: nn.Module,
        posterior: Posterior,
        prior: Prior,
        decoder: nn.Module,
        likelihood: Likelihood,
        layout: LatentLayout,
        kl_estimator: KLChoice = "analytic",
        classes: int = 0,
        classifier: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if classifier is not None and classes < 2:
            raise ValueError(f"a classifier q(y|x) needs two classes or more, not {classes}")
        self.classes = classes
        self.encoder = encoder
        self.posterior = posterior
        self.prior = prior
        self.decoder = decoder
        self.likelihood = likelihood
        self.classifier = classifier  # registered last: the other parts' parameters keep their order
        self.latent_dim = layout.code_dim
        estimate = kl_estimate(type(prior), type(posterior), kl_estimator)
        # a plain attribute, not a submodule: the parts are registered above, once
        self.latent = Latent(layout, estimate, encoder, posterior, prior)

    @property
    def kl_estimate(self) -> KLEstimate:
        """How the ELBO's KL is computed (`vaezoo.model.kl_estimate`): decided by the parts and `kl_estimator`."""
        return self.latent.estimate

    def init_output(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Start the decoder's output at the likelihood's parameters for the training data's pixel mean
        and std, (C, H, W) each: the data-dependent initialization of the papers' code. From p = 0.5
        at every pixel (about 545 nats on MNIST), the encoder stops reading its input within tens of
        steps, and a prior whose KL is zero for such an encoder (the VampPrior's) never recovers."""
        self.decoder.output.initialize(self.likelihood.initial_params(mean, std))

    @property
    def conditional(self) -> bool:
        """True for a conditional VAE: its encoder and decoder read a label beside x and z."""
        return self.classes > 0

    @property
    def semi_supervised(self) -> bool:
        """True for M2 (Kingma et al. 2014): the label is a latent class that `classify` infers, and the
        bounds on log p(x) sum it out; a conditional VAE without a classifier is given its labels."""
        return self.classifier is not None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of q(y|x) for each image, (B, classes); only for a semi-supervised model."""
        if self.classifier is None:
            raise ValueError("this model has no classifier q(y|x) (model.classifier)")
        return self.classifier(x)

    def with_label(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """`h` (*lead, F) with the one-hot of the labels y (B,) laid beside it on the last axis (the
        labels broadcast over leading sample axes), for a conditional model; `h` itself otherwise."""
        if not self.conditional:
            return h
        if y is None:
            onehot = h.new_zeros(*h.shape[:-1], self.classes)
        else:
            onehot = F.one_hot(y.long(), self.classes).to(h.dtype).expand(*h.shape[:-1], self.classes)
        return torch.cat([h, onehot], dim=-1)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """What the posterior reads of each image: the encoder's features (and its label, when conditional)."""
        return self.with_label(self.encoder(x), y)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """The posterior's base diagonal Gaussian for each image; unpacks as (mu, logvar), (B, D) each."""
        return self.latent.encode(self.features(x, y))

    def decode(self, code: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for each code (a latent as `encode` gives it; the top layer of a
        hierarchy, whose lower layers are filled with their conditional means), (*lead, P * C, H, W)."""
        return self.decode_latent(self.latent.expand(code), y)

    def decode_latent(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for each full latent z (as the posterior and prior draw them)."""
        return self.decoder(self.with_label(self.latent.observed(z), y))

    def elbo(
        self, x: torch.Tensor, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> ELBOTerms:
        """The ELBO's terms for a batch, one z sample per image; `loss` is the -ELBO itself (beta = 1), plus
        the posterior's training penalty where it has one, and the training objectives weight the KL as they say. For a conditional model it bounds
        log p(x|y), given the labels `y`."""
        draw = self.latent.draw(self.features(x, y), generator=generator)
        recon_nll = -self.likelihood.log_prob(x, self.decode_latent(draw.z, y))
        kl, kl_per_dim = self.latent.kl_terms(draw)
        loss = recon_nll + kl if draw.penalty is None else recon_nll + kl + draw.penalty
        return ELBOTerms(recon_nll=recon_nll, kl=kl, kl_per_dim=kl_per_dim, beta=1.0, loss=loss, penalty=draw.penalty)

    def log_weights(
        self,
        x: torch.Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        features: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k|x) for `samples` draws z_k ~ q(z|x): shape (samples, B).

        Their logsumexp over k minus log(samples) is the importance-weighted bound L_K <= log p(x)
        (log p(x|y) for a conditional model, given the labels `y`).
        Pass `features` = features(x, y) to reuse them across chunks of samples.
        """
        log_px_z, log_prior_ratio = self.weight_terms(x, samples, generator, features, y)
        return log_px_z + log_prior_ratio

    def weight_terms(
        self,
        x: torch.Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        features: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z_k), log p(z_k) - log q(z_k|x)) for `samples` draws z_k ~ q(z|x), each (samples, B)."""
        features = self.features(x, y) if features is None else features
        draw = self.latent.draw(features, samples, generator)
        log_px_z = self.likelihood.log_prob(x, self.decode_latent(draw.z, y))
        return log_px_z, self.latent.log_prior_ratio(draw)

    @torch.inference_mode()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images decoded from n draws of the prior: the likelihood's mean, (n, C, H, W). A conditional
        model decodes each draw with its label in `labels` (n,), or, given none, the classes in turn
        (0, 1, ..., classes - 1, 0, ...); an unconditional one ignores `labels`."""
        device = next(self.parameters()).device
        if self.conditional and labels is None:
            labels = torch.arange(n, device=device) % self.classes
        y = None if labels is None else labels.to(device)
        return self.likelihood.mean(self.decode_latent(self.latent.sample(n, generator).to(device), y))
