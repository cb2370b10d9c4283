"""Reading YAML specs, bounded: a file of at most MAX_SPEC_BYTES that is a regular file (never a device or
a pipe), parsed with numeric exponents, no duplicate keys and no alias bombs; every problem one SpecError."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from vaezoo.core.errors import SpecError

#: a spec is a few hundred bytes; these bound what a file (or an override) may make the loader build
MAX_SPEC_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that reads `1e-3` as a number (YAML 1.1 reads it as a string; users mean a number)
    and refuses a duplicate key (YAML would keep the last one silently), a document whose aliases expand to
    more than MAX_YAML_VALUES values ("billion laughs": validation, copies and sweep expansion all walk the
    expanded tree), one that nests deeper than MAX_YAML_DEPTH, and an alias inside its own anchor."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _expanded(node, {})
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then a key of its own is an override, not a duplicate
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: SafeLoader's own error names it
            if first is not key_node:
                problem = f"duplicate key {key!r} (first at line {first.start_mark.line + 1})"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        return super().construct_mapping(node, deep)


class _Dumper(yaml.SafeDumper):
    """yaml.SafeDumper that knows _Loader's exponent floats, so it quotes a string such as `0E0` that
    would otherwise load back as a number."""


for _resolving in (_Loader, _Dumper):
    _resolving.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


def dump_yaml(data: Any) -> str:
    """YAML text that parse_yaml reads back to `data` (keys in their order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


def _expanded(node: yaml.Node, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values, depth) of `node` with every alias expanded: a shared node counts once per use but is
    visited once. A ComposerError past the bounds, or for an alias inside its own anchor."""
    known = seen.get(id(node))
    if known is not None:
        if known[0] < 0:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
        return known
    seen[id(node)] = (-1, 0)
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
    sizes = [_expanded(child, seen) for child in children]
    values, depth = 1 + sum(n for n, _ in sizes), 1 + max((d for _, d in sizes), default=0)
    if values > MAX_YAML_VALUES:
        problem = f"more than {MAX_YAML_VALUES} values once its aliases are expanded (an alias bomb?)"
        raise yaml.composer.ComposerError(None, None, problem, node.start_mark)
    if depth > MAX_YAML_DEPTH:
        raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", node.start_mark)
    seen[id(node)] = (values, depth)
    return values, depth


def parse_yaml(text: str, source: str) -> Any:
    """yaml.safe_load with numeric exponents and _Loader's checks, every error a one-line SpecError."""
    try:
        return yaml.load(text, Loader=_Loader)
    except RecursionError:  # the composer recurses once per level, before _Loader can count them
        raise SpecError(f"{source}: invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(f"{source}: invalid YAML{where}: {problem}") from None


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; SpecError for anything else.

    Only a regular file of at most MAX_SPEC_BYTES is read: a device (/dev/zero), a pipe or a huge file
    would otherwise be read for ever or into all memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # non-blocking: a pipe with no writer would wait for one
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except OSError as error:
        raise SpecError(f"cannot read spec file {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError(f"spec path is a folder, not a file: {path}")
        if not stat.S_ISREG(mode):
            raise SpecError(f"{path} is not a regular file (a device, pipe or socket); a spec must be a file")
        try:
            raw = handle.read(MAX_SPEC_BYTES + 1)
        except OSError as error:
            raise SpecError(f"cannot read spec file {path}: {error.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is larger than {MAX_SPEC_BYTES >> 20} MiB; a spec is a short YAML file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: not UTF-8 text (byte {error.start})") from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise SpecError(f"{path}: the spec is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the top level must be a mapping of keys, not a {type(data).__name__}")
    return data
