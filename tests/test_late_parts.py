"""A part registered after vaezoo is imported (a notebook cell, a plugin) is a kind the next spec may use,
and running the cell that defines it again is harmless (the tutorial's custom encoder does both)."""

import textwrap

import pytest
import torch

import vaezoo
from tests.conftest import tiny_spec
from vaezoo.core.errors import RegistryError, SpecError
from vaezoo.parts import ENCODERS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

#: a custom encoder as a notebook user writes it (see docs/tutorial.md)
CELL = textwrap.dedent(
    """
    from typing import ClassVar, Literal

    from pydantic import Field
    from torch import nn

    from vaezoo.core.schema import StrictModel
    from vaezoo.parts.encoders import ENCODERS, Encoder


    class WideSpec(StrictModel):
        kind: Literal["wide"] = "wide"
        width: int = Field(default=WIDTH, ge=1)


    @ENCODERS.register("wide")
    class WideEncoder(Encoder):
        Spec: ClassVar = WideSpec

        def __init__(self, *, image_shape, width):
            pixels = image_shape[0] * image_shape[1] * image_shape[2]
            super().__init__(nn.Sequential(nn.Flatten(), nn.Linear(pixels, width), nn.Tanh()), width)
    """
)


def run_cell(width: int) -> type:
    """Execute the cell in a fresh namespace named like a notebook's, as re-running a cell does."""
    namespace = {"__name__": "__main__"}
    exec(CELL.replace("WIDTH", str(width)), namespace)  # noqa: S102 (a notebook cell)
    return namespace["WideEncoder"]


@pytest.fixture
def own_encoders(monkeypatch):
    """The encoder registry as it is now, restored after the test."""
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))


def spec_with(encoder: dict) -> dict:
    return {"name": "late", "model": {"latent_dim": 3, "encoder": encoder}}


def test_a_kind_registered_after_import_validates_and_builds(own_encoders):
    with pytest.raises(SpecError, match="model.encoder: unknown encoder kind 'wide'"):
        validate(spec_with({"kind": "wide"}), "test")
    encoder = run_cell(width=12)
    spec = validate(spec_with({"kind": "wide", "width": 7}), "test")
    assert type(spec.model.encoder) is encoder.Spec and spec.model.encoder.width == 7
    model = build_model(spec.model, (1, 28, 28))
    assert isinstance(model.encoder, encoder) and model.encode(torch.rand(2, 1, 28, 28)).mu.shape == (2, 3)
    assert "wide" in vaezoo.list_components()["model.encoder"]
    assert validate(spec.model_dump(mode="json"), "round trip") == spec


def test_a_late_kinds_bad_field_names_its_yaml_path(own_encoders):
    run_cell(width=12)
    with pytest.raises(SpecError, match=r"^test: model.encoder.width: Input should be greater than or equal to 1$"):
        validate(spec_with({"kind": "wide", "width": 0}), "test")
    with pytest.raises(SpecError, match=r"^test: model.encoder.depth: unknown key$"):
        validate(spec_with({"kind": "wide", "depth": 2}), "test")


def test_running_the_cell_again_replaces_the_part(own_encoders):
    first, second = run_cell(width=12), run_cell(width=5)
    assert first is not second and ENCODERS.get("wide") is second
    assert validate(spec_with({"kind": "wide"}), "test").model.encoder.width == 5  # the new cell's default
    old = first.Spec(width=3)  # a spec object made before the cell ran again becomes the new Spec
    assert type(validate(spec_with(old.model_dump()), "test").model.encoder) is second.Spec


def test_a_notebook_class_cannot_take_a_built_in_kind(own_encoders):
    with pytest.raises(RegistryError, match="encoder 'mlp' is already registered"):
        exec(CELL.replace('"wide"', '"mlp"').replace("WIDTH", "4"), {"__name__": "__main__"})  # noqa: S102
    assert ENCODERS.get("mlp").__module__ == "vaezoo.parts.encoders"


def test_a_run_trains_a_late_part(own_encoders, synthetic_root, tmp_path):
    run_cell(width=16)
    spec = tiny_spec(synthetic_root, name="wide", train__epochs=1)
    spec["model"]["encoder"] = {"kind": "wide", "width": 16}
    run = vaezoo.run(spec, out=tmp_path, progress=False)
    assert run.model.encoder.out_features == 16 and run.metrics.epochs == 1


@pytest.mark.parametrize("slot", ["encoder", "model.encoder"])
def test_vaezoo_register_adds_to_the_slots_registry(own_encoders, slot):
    cell = CELL.replace("WIDTH", "5").replace('@ENCODERS.register("wide")', f'@vaezoo.register("{slot}", "wide")')
    exec(cell, {"__name__": "__main__", "vaezoo": vaezoo})  # noqa: S102 (a notebook cell)
    assert ENCODERS.get("wide").__name__ == "WideEncoder"
    assert validate(spec_with({"kind": "wide"}), "t").model.encoder.width == 5


def test_vaezoo_register_names_the_slots_when_the_slot_is_unknown():
    with pytest.raises(ValueError, match="unknown slot 'encoders'; slots: model.encoder, "):
        vaezoo.register("encoders", "x")
