"""The package's layers, bottom first: a module may import its own layer and the layers below it, never
one above, and no chain of imports comes back to where it started. Imports under `if TYPE_CHECKING:`
are annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vaezoo"
#: Bottom first. `core` knows nothing of VAEs; `model` the distributions and the assembled VAE; `parts`
#: the registered components; `spec` the experiment as data and the objects it builds; then what runs it.
LAYERS = ("core", "data", "model", "parts", "spec", "evaluate", "train", "outputs", "runs", "sweeps", "api", "cli")
TOP = ("__init__", "__main__")  # the package's face: it may re-export anything


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """The vaezoo modules `path` imports when it runs (at import time or inside a function)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {module for module in found if module.startswith("vaezoo.") and module != name}


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {dep for dep in runtime_imports(path) if dep in MODULES} for name, path in MODULES.items()}


def layer(module: str) -> int | None:
    """The module's layer, by its first name under vaezoo; None for the package's face."""
    first = module.split(".")[1] if "." in module else "__init__"
    return None if first in TOP else LAYERS.index(first)


def test_every_module_has_a_layer():
    unplaced = [name for name in MODULES if "." in name and name.split(".")[1] not in (*LAYERS, *TOP)]
    assert not unplaced, f"modules outside every layer (add their package to LAYERS): {unplaced}"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if layer(name) is not None))
def test_no_module_imports_a_layer_above_its_own(module):
    upward = sorted(dep for dep in GRAPH[module] if layer(dep) is not None and layer(dep) > layer(module))
    assert not upward, f"{module} ({LAYERS[layer(module)]}) imports upward: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path that returns to its start, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    # a package's __init__ that imports its own modules (to register them) is not a cycle back to it
    graph = {name: {dep for dep in deps if not name.startswith(f"{dep}.")} for name, deps in GRAPH.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_checks_catch_what_they_claim():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer("vaezoo.cli.main") > layer("vaezoo.runs.runner") > layer("vaezoo.model.vae") > layer("vaezoo.core.io")
