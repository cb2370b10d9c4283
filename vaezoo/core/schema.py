"""The base class of every spec, and the one generic way to build a registered component from its spec."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from vaezoo.core.registry import Registry

T = TypeVar("T")


class StrictModel(BaseModel):
    """A spec section: unknown keys, coerced types and non-finite floats are errors, not guesses."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    def fields(self) -> dict[str, Any]:
        """The spec's settings as keyword arguments for its component (everything but `kind`)."""
        return {name: getattr(self, name) for name in type(self).model_fields if name != "kind"}


def build(registry: Registry[type[T]], spec: StrictModel, **context: Any) -> T:
    """Instantiate the component registered as `spec.kind` with the spec's fields plus `context`.

    `context` carries what the spec cannot know (the image shape, the latent size); the component's
    own constructor names every argument it takes, so a misspelt one fails loudly.
    """
    component = registry.get(spec.kind)  # type: ignore[attr-defined]
    return component(**spec.fields(), **context)
