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
        """Decorator that registers its target under `name`.

        A name is taken once: another component claiming it (a plugin registering a kind vaezoo has, e.g.
        `mlp`) is a RegistryError, one line, and the first stays. The same definition registered again (a
        notebook cell run twice, a module reloaded: a class or function of the same module and qualified
        name, or an equal value) replaces it, so that re-running the cell that defines a part is harmless.
        """

        def add(obj: T) -> T:
            if name in self._entries and not same_definition(self._entries[name], obj):
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


def same_definition(old: object, new: object) -> bool:
    """Whether `new` is `old` defined again: the same object, an equal value, or a class or function of the
    same module and qualified name (what re-running a notebook cell or reloading a module makes)."""
    if old is new:
        return True
    if isinstance(old, type) or callable(old) and hasattr(old, "__qualname__"):
        key = _definition(old)
        return key is not None and key == _definition(new)
    return bool(old == new)


def _definition(obj: object) -> tuple[object, object] | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return (module, qualname) if isinstance(module, str) and isinstance(qualname, str) else None
