"""One small generic registry: components register themselves under the name used as `kind` in YAML."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vaezoo.core.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table filled by a decorator.

    >>> ENCODERS = Registry("encoder")
    >>> @ENCODERS.register("mlp")
    ... class MLPEncoder: ...
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under `name`; a name can be taken only once (a plugin
        registering a kind vaezoo has, e.g. `mlp`, is a RegistryError: one line, not a replaced part)."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise RegistryError(f"{self.what} {name!r} is already registered; give yours another name")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """The object registered as `name`; an unknown name raises KeyError listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise KeyError(f"unknown {self.what} {name!r}; known: {known}") from None

    def require(self, name: str) -> str:
        """`name` itself if it is registered; ValueError listing the known names otherwise (for spec validators)."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(self.names()) or 'none'}")
        return name

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
