import pytest

from vaezoo.core.errors import RegistryError
from vaezoo.core.registry import Registry
from vaezoo.parts import DECODERS, ENCODERS, LIKELIHOODS, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS
from vaezoo.parts.objectives import OBJECTIVES


def test_register_get_and_names_keep_order():
    things: Registry[type] = Registry("thing")

    @things.register("b")
    class B: ...

    @things.register("a")
    class A: ...

    assert things.get("a") is A and things.get("b") is B
    assert things.names() == ["b", "a"]
    assert "a" in things and "c" not in things and len(things) == 2


def test_duplicate_name_raises_and_keeps_the_first():
    things: Registry[type] = Registry("thing")
    things.register("x")(int)
    with pytest.raises(ValueError, match="thing 'x' is already registered"):
        things.register("x")(str)
    assert things.get("x") is int


def test_unknown_name_lists_the_known_ones():
    things: Registry[type] = Registry("thing")
    things.register("mlp")(int)
    things.register("conv")(str)
    with pytest.raises(KeyError, match="unknown thing 'resnet'; known: mlp, conv"):
        things.get("resnet")


def _define(source: str, module: str) -> type:
    """Run a class definition as a notebook cell or a module body does: a fresh class each time."""
    namespace = {"__name__": module}
    exec(source, namespace)  # noqa: S102 (a test defining a class twice)
    return namespace["Part"]


def test_the_same_definition_again_replaces_it():
    """Re-running the notebook cell that defines and registers a part is harmless: the new class replaces
    the old one (same module, same qualified name)."""
    things: Registry[type] = Registry("thing")
    first = things.register("mine")(_define("class Part:\n    version = 1\n", "__main__"))
    second = things.register("mine")(_define("class Part:\n    version = 2\n", "__main__"))
    assert first is not second and things.get("mine") is second and things.names() == ["mine"]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("elsewhere", "class Part:\n    pass\n"),  # a plugin's class of the same name
        ("__main__", "class Other:\n    pass\nPart = Other\n"),  # another class of the same module
    ],
)
def test_another_definition_of_a_taken_name_is_refused(module, source):
    things: Registry[type] = Registry("thing")
    first = things.register("mine")(_define("class Part:\n    pass\n", "__main__"))
    with pytest.raises(RegistryError, match="thing 'mine' is already registered; give yours another name"):
        things.register("mine")(_define(source, module))
    assert things.get("mine") is first


def test_values_may_be_registered_again_only_when_equal():
    things: Registry[tuple[int, int]] = Registry("thing")
    things.register("pair")((1, 2))
    things.register("pair")((1, 2))
    with pytest.raises(RegistryError):
        things.register("pair")((2, 1))
    assert things.get("pair") == (1, 2)


@pytest.mark.parametrize("registry", [ENCODERS, DECODERS, PRIORS, POSTERIORS, LIKELIHOODS, KL_WEIGHTINGS, OBJECTIVES])
def test_no_outside_class_replaces_a_built_in_part(registry):
    for name, builtin in registry.items():
        impostor = type(builtin.__name__, (), {"__module__": "a_plugin", "__qualname__": builtin.__qualname__})
        with pytest.raises(RegistryError, match="already registered"):
            registry.register(name)(impostor)
        assert registry.get(name) is builtin
