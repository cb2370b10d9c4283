"""The spec's slots: every place a registered component fills (its dotted path, registry and default
kind), the one table that the spec's fields, `vaezoo list` and the tests read.

A slot is validated from its registry when a spec is validated, not when vaezoo is imported: a part
registered later (in a notebook cell, by a plugin) is a `kind` the very next spec may use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from vaezoo.core.registry import Registry
from vaezoo.parts import DECODERS, ENCODERS, LIKELIHOODS, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS
from vaezoo.parts.objectives import OBJECTIVES

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

    def validate(self, value: Any) -> BaseModel:
        """`value` (a mapping with `kind`, or a component's Spec) as the Spec of the component registered
        now under its kind. A wrong field inside is reported at its own path (model.encoder.hidden)."""
        if isinstance(value, BaseModel):
            kind = getattr(value, "kind", None)
            if kind in self.registry and isinstance(value, self.registry.get(kind).Spec):
                return value
            value = value.model_dump()
        if not isinstance(value, dict):
            # pydantic reports a ValueError at the field's path; a TypeError would escape as a traceback
            raise ValueError(f"give a mapping with a kind ({self.kinds()}), not a {type(value).__name__}")  # noqa: TRY004
        kind = value.get("kind", self.default)
        if not isinstance(kind, str) or kind not in self.registry:
            raise ValueError(f"unknown {self.registry.what} kind {kind!r}; known: {self.kinds()}")
        return self.registry.get(kind).Spec.model_validate(value)  # its errors keep their paths

    def kinds(self) -> str:
        return ", ".join(self.registry.names()) or "none"


@dataclass(frozen=True)
class SlotType:
    """The pydantic type of a slot's field: the Spec of whichever component its `kind` names, looked up in
    the registry at validation time (a discriminated union built at import would freeze the kinds)."""

    slot: Slot

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.slot.validate)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The union of the registered Specs' schemas, as the registry holds them now."""
        specs = [component.Spec.model_json_schema() for _, component in self.slot.registry.items()]
        return {"oneOf": specs, "discriminator": {"propertyName": "kind"}}


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
T = TypeVar("T")


def register(slot: str, kind: str) -> Callable[[T], T]:
    """Decorator that registers a part as `kind` in the registry of `slot`: its spec path (`model.encoder`,
    `kl`) or that path's last name (`encoder`, `objective`). The part is a `kind` the next spec may use.

        @vaezoo.register("encoder", "tiny")
        class Tiny(nn.Module):
            Spec = TinySpec  # a StrictModel with `kind: Literal["tiny"]`
    """
    matches = [s for s in SLOTS if slot in (s.path, s.key)]
    if not matches:
        raise ValueError(f"unknown slot {slot!r}; slots: {', '.join(s.path for s in SLOTS)}")
    return matches[0].registry.register(kind)


def slot_type(path: str) -> Any:
    """The annotation of a slot's field (any registered component's Spec, checked at validation time)."""
    return Annotated[Any, SlotType(SLOT[path])]


EncoderSpec = slot_type("model.encoder")
PosteriorSpec = slot_type("model.posterior")
PriorSpec = slot_type("model.prior")
DecoderSpec = slot_type("model.decoder")
LikelihoodSpec = slot_type("model.likelihood")
KLSpec = slot_type("kl")
ObjectiveSpec = slot_type("objective")


def slot_field(path: str) -> Any:
    """The spec field of a slot, defaulting to its default kind's Spec."""
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
