import pytest

from vaezoo.core.registry import Registry


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
