"""The objects a spec describes: the model, its KL weighting and objective, and what its NLL is."""

from __future__ import annotations

from torch import nn

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import build
from vaezoo.model.latent import LatentLayout
from vaezoo.model.vae import VAE
from vaezoo.parts import DECODERS, ENCODERS, KL_WEIGHTINGS, LIKELIHOODS, OBJECTIVES, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.parts.objectives import Objective
from vaezoo.parts.posteriors import Posterior
from vaezoo.spec.experiment import ExperimentSpec, ModelSpec


def latent_layout(spec: ModelSpec) -> LatentLayout:
    """How the spec's latent is laid out: its layers, bottom first, as the prior's spec gives them."""
    return LatentLayout.of(spec.prior, spec.latent_dim)


def build_model(spec: ModelSpec, image_shape: tuple[int, int, int]) -> VAE:
    """The VAE the spec describes; an impossible shape (a conv stack too deep) is a SpecError.

    The likelihood is built first, since it says how many values per pixel the decoder must give;
    the prior last, so that the networks' initial weights do not depend on which prior is chosen.
    A hierarchical posterior, whose layers mirror the prior's, comes after the prior: the order in
    which the initial weights are drawn, so that a seed gives the weights it always gave.
    """
    layout = latent_layout(spec)
    hierarchical = POSTERIORS.get(spec.posterior.kind).hierarchical
    likelihood = build(LIKELIHOODS, spec.likelihood, image_shape=image_shape)
    try:
        encoder = build(ENCODERS, spec.encoder, image_shape=image_shape)
        # a conditional model's posterior and decoder read the one-hot label beside features and z
        in_features = encoder.out_features + spec.classes
        posterior = None if hierarchical else build_posterior(spec, layout, in_features)
        decoder = build(
            DECODERS,
            spec.decoder,
            image_shape=image_shape,
            latent_dim=layout.observed_dim + spec.classes,
            params_per_pixel=likelihood.params_per_pixel,
        )
    except ValueError as error:
        raise SpecError(f"model: {error}") from None
    # a prior defined through the posterior at pseudo-inputs of its own makes them image-shaped
    images = {"image_shape": image_shape} if PRIORS.get(spec.prior.kind).through_posterior else {}
    prior = build(PRIORS, spec.prior, latent_dim=spec.latent_dim, **images)
    if posterior is None:
        posterior = build_posterior(spec, layout, in_features)
    # last of all, so that a model without one draws the initial weights it always drew
    classifier = None if spec.classifier is None else build_classifier(spec, image_shape)
    return VAE(
        encoder, posterior, prior, decoder, likelihood, layout, spec.kl_estimator, classes=spec.classes,
        classifier=classifier,
    )  # fmt: skip


def build_classifier(spec: ModelSpec, image_shape: tuple[int, int, int]) -> nn.Module:
    """M2's q(y|x): the `model.classifier` encoder's body, then a linear layer to the classes' logits."""
    try:
        body = build(ENCODERS, spec.classifier, image_shape=image_shape)
    except ValueError as error:
        raise SpecError(f"model.classifier: {error}") from None
    return nn.Sequential(body, nn.Linear(body.out_features, spec.classes))


def build_posterior(spec: ModelSpec, layout: LatentLayout, in_features: int) -> Posterior:
    """The spec's posterior over the encoder's `in_features`: sized by the code's dimension, or, for a
    hierarchical one, by every layer's; a categorical latent's is told its categories per variable."""
    if POSTERIORS.get(spec.posterior.kind).hierarchical:
        return build(POSTERIORS, spec.posterior, in_features=in_features, layers=list(layout.sizes))
    categories = {} if layout.categories is None else {"categories": layout.categories}
    return build(POSTERIORS, spec.posterior, in_features=in_features, latent_dim=spec.latent_dim, **categories)


def build_kl_weighting(spec: ExperimentSpec) -> KLWeighting:
    return build(KL_WEIGHTINGS, spec.kl)


def build_objective(spec: ExperimentSpec, dataset_size: int) -> Objective:
    """The spec's objective, told the training split's size where its estimator weighs a batch by it."""
    needs = OBJECTIVES.get(spec.objective.kind).needs_dataset_size
    return build(OBJECTIVES, spec.objective, **({"dataset_size": dataset_size} if needs else {}))


def nll_kind(spec: ExperimentSpec) -> NLLKind:
    """What the reported NLL is: a discrete log-likelihood, a continuous density, or neither."""
    return LIKELIHOODS.get(spec.model.likelihood.kind).nll_kind(spec.data.binarize)
