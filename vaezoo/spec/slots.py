"""The spec's slots: every place a registered component fills (its dotted path, registry and default
kind), the one table that the spec's fields, `vaezoo list` and the tests read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import Field

from vaezoo.core.registry import Registry
from vaezoo.parts import DECODERS, ENCODERS, LIKELIHOODS, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS
from vaezoo.parts.objectives import OBJECTIVES


def tagged_union(registry: Registry[Any]) -> Any:
    """The discriminated union (on `kind`) of the Specs of every component in `registry`."""
    specs = tuple(component.Spec for _, component in registry.items())
    return Annotated[Union[specs], Field(discriminator="kind")]  # noqa: UP007 (a runtime tuple)


#: A run, sweep or variant name: it becomes a folder name, so no separators and no leading dot.
NAME = r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$"


@dataclass(frozen=True)
class Slot:
    """A place in the spec that a registered component fills: its dotted path, registry and default kind."""

    path: str
    registry: Registry[Any]
    default: str

    @property
    def key(self) -> str:
        return self.path.rsplit(".", 1)[-1]


#: Every component slot of the spec: the one table that the spec, `vaezoo list` and the tests read.
SLOTS = (
    Slot("model.encoder", ENCODERS, "mlp"),
    Slot("model.posterior", POSTERIORS, "gaussian"),
    Slot("model.prior", PRIORS, "standard"),
    Slot("model.decoder", DECODERS, "mlp"),
    Slot("model.likelihood", LIKELIHOODS, "bernoulli"),
    Slot("kl", KL_WEIGHTINGS, "constant"),
    Slot("objective", OBJECTIVES, "elbo"),
)
SLOT = {slot.path: slot for slot in SLOTS}
EncoderSpec = tagged_union(ENCODERS)
PosteriorSpec = tagged_union(POSTERIORS)
PriorSpec = tagged_union(PRIORS)
DecoderSpec = tagged_union(DECODERS)
LikelihoodSpec = tagged_union(LIKELIHOODS)
KLSpec = tagged_union(KL_WEIGHTINGS)
ObjectiveSpec = tagged_union(OBJECTIVES)
COMPONENT_KINDS = {name for slot in SLOTS for name in slot.registry.names()}


def slot_field(path: str) -> Any:
    """The spec field of a slot: a discriminated union of its components' Specs, defaulting to the default kind."""
    slot = SLOT[path]
    return Field(default_factory=lambda: slot.registry.get(slot.default).Spec(kind=slot.default))


def default_kinds(data: Any, prefix: str) -> Any:
    """A component mapping without `kind` is the slot's default component (so `--set kl.beta=4` works)."""
    if isinstance(data, dict):
        for slot in SLOTS:
            parent, _, key = slot.path.rpartition(".")
            if parent == prefix and isinstance(data.get(key), dict) and "kind" not in data[key]:
                data = {**data, key: {"kind": slot.default, **data[key]}}
    return data
