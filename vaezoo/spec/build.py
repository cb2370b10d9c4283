"""The objects a spec describes: the model, its KL weighting and objective, and what its NLL is."""

from __future__ import annotations

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import build
from vaezoo.model.vae import VAE
from vaezoo.parts import DECODERS, ENCODERS, KL_WEIGHTINGS, LIKELIHOODS, OBJECTIVES, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KLWeighting
from vaezoo.parts.objectives import Objective
from vaezoo.spec.experiment import ExperimentSpec, ModelSpec


def build_model(spec: ModelSpec, image_shape: tuple[int, int, int]) -> VAE:
    """The VAE the spec describes; an impossible shape (a conv stack too deep) is a SpecError.

    The likelihood is built first, since it says how many values per pixel the decoder must give;
    the prior last, so that the networks' initial weights do not depend on which prior is chosen.
    """
    likelihood = build(LIKELIHOODS, spec.likelihood, image_shape=image_shape)
    try:
        encoder = build(ENCODERS, spec.encoder, image_shape=image_shape)
        posterior = build(POSTERIORS, spec.posterior, in_features=encoder.out_features, latent_dim=spec.latent_dim)
        decoder = build(
            DECODERS,
            spec.decoder,
            image_shape=image_shape,
            latent_dim=PRIORS.get(spec.prior.kind).observed_dims(spec.prior, spec.latent_dim),
            params_per_pixel=likelihood.params_per_pixel,
        )
    except ValueError as error:
        raise SpecError(f"model: {error}") from None
    prior = build(PRIORS, spec.prior, latent_dim=spec.latent_dim)
    return VAE(encoder, posterior, prior, decoder, likelihood, spec.latent_dim, spec.kl_estimator)


def build_kl_weighting(spec: ExperimentSpec) -> KLWeighting:
    return build(KL_WEIGHTINGS, spec.kl)


def build_objective(spec: ExperimentSpec, dataset_size: int) -> Objective:
    """The spec's objective, told the training split's size where its estimator weighs a batch by it."""
    needs = OBJECTIVES.get(spec.objective.kind).needs_dataset_size
    return build(OBJECTIVES, spec.objective, **({"dataset_size": dataset_size} if needs else {}))


def nll_kind(spec: ExperimentSpec) -> str:
    """What the reported NLL is: a discrete log-likelihood, a continuous density, or neither."""
    return LIKELIHOODS.get(spec.model.likelihood.kind).nll_kind(spec.data.binarize)
