"""Spec loading, overrides and the one-line errors that name the YAML path."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from vaezoo.core.errors import SpecError
from vaezoo.spec.experiment import ExperimentSpec, apply_overrides, load_spec, parse_yaml, read_mapping, validate

EXPERIMENTS = sorted(Path(__file__).parents[1].joinpath("experiments").glob("*.yaml"))
BASE = {"name": "x", "model": {"encoder": {"kind": "mlp", "hidden": [400]}}}


def spec_files():
    """The run specs (full, or a base plus changes); sweeps have a grid, variants or seeds."""
    return [p for p in EXPERIMENTS if not {"grid", "variants", "seeds"} & parse_yaml(p.read_text(), str(p)).keys()]


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_shipped_experiments_validate_and_round_trip(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert validate(parse_yaml(spec.to_yaml(), "dump"), "dump") == spec


def test_defaults_are_the_classic_vae():
    spec = validate({"name": "x"}, "test")
    assert spec.model.latent_dim == 20
    assert spec.model.encoder.hidden == [400] and spec.model.likelihood.kind == "bernoulli"
    assert spec.kl.kind == "constant" and spec.kl.beta == 1.0
    assert spec.data.binarize == "dynamic"


def test_dotted_overrides_parse_values_as_yaml():
    data = apply_overrides(
        BASE, ["model.latent_dim=2", "model.encoder.hidden=[64, 32]", "train.lr=1e-3", "kl={kind: linear}"]
    )
    spec = validate(data, "test")
    assert spec.model.latent_dim == 2 and spec.model.encoder.hidden == [64, 32]
    assert spec.train.lr == 1e-3 and spec.kl.kind == "linear"
    assert BASE["model"]["encoder"]["hidden"] == [400]  # the base is not modified


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**BASE, "modle": {}}, "test: modle: unknown key"),
        (
            {"name": "x", "model": {"encoder": {"kind": "mlp", "hidden": [0]}}},
            "model.encoder.hidden.0: Input should be greater than or equal to 1",
        ),
        ({"name": "x", "model": {"encoder": {"kind": "mlp", "hiden": [4]}}}, "model.encoder.hiden: unknown key"),
        (
            {"name": "x", "model": {"encoder": {"kind": "transformer"}}},
            "model.encoder: unknown encoder kind 'transformer'; known: mlp, conv, resnet",
        ),
        ({"name": "x", "model": {"latent_dim": "20"}}, "model.latent_dim: Input should be a valid integer"),
        ({"name": "x", "train": {"lr": float("nan")}}, "train.lr: Input should be a finite number"),
        ({"name": "x", "train": {"epochs": 10**9}}, "train.epochs: Input should be less than or equal to 100000"),
        (
            {"name": "x", "data": {"dataset": "cifar"}},
            "data.dataset: unknown dataset 'cifar'; known: mnist, fashion-mnist",
        ),
        ({"name": "../escape"}, "name: String should match pattern"),
        ({"name": "/abs/path"}, "name: String should match pattern"),
        ({"seed": 1}, "name: required key is missing"),
        ({"name": "x", "kl": {"kind": "cyclical", "ratio": 0}}, "kl.ratio: Input should be greater than 0"),
        (
            {"name": "x", "model": {"likelihood": {"kind": "bernoulli", "sigma": "fixed"}}},
            "model.likelihood.sigma: unknown key",
        ),
    ],
)
def test_bad_values_name_their_yaml_path(data, message):
    with pytest.raises(SpecError) as error:
        validate(data, "test")
    text = str(error.value)
    assert message in text and "\n" not in text


def test_several_problems_report_the_first_and_count_the_rest():
    with pytest.raises(SpecError, match=r"\(and 1 more\)"):
        validate({"name": "x", "foo": 1, "bar": 2}, "test")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the spec is empty"),
        (b"- a\n- b\n", "the top level must be a mapping of keys, not a list"),
        (b"name: [unclosed\n", "invalid YAML at line"),
        (b"name: \xff\xfe\n", "not UTF-8 text"),
        (b"just a string", "not a str"),
    ],
)
def test_bad_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message) as error:
        read_mapping(path)
    assert "\n" not in str(error.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize("override", ["nokey", "=3", "model..latent_dim=2", "name.x=1"])
def test_malformed_overrides(override):
    with pytest.raises(SpecError, match="override"):
        apply_overrides(BASE, [override])


def test_exponent_floats_without_a_dot_are_numbers():
    assert parse_yaml("lr: 1e-3\nbig: 5E+2\nname: 1e3x", "t") == {"lr": 1e-3, "big": 500.0, "name": "1e3x"}


def test_spec_is_frozen():
    spec = ExperimentSpec.model_validate({"name": "x"})
    with pytest.raises(ValidationError, match="frozen"):
        spec.seed = 3  # type: ignore[misc]


def test_a_component_without_kind_is_the_slot_default():
    spec = validate({"name": "x", "kl": {"beta": 4.0}, "model": {"encoder": {"hidden": [64]}}}, "test")
    assert spec.kl.kind == "constant" and spec.kl.beta == 4.0
    assert spec.model.encoder.kind == "mlp" and spec.model.encoder.hidden == [64]
    with pytest.raises(SpecError, match="kl.warmup_steps: unknown key"):
        validate({"name": "x", "kl": {"warmup_steps": 4}}, "test")


def test_a_spec_can_be_a_base_plus_only_its_changes(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nmodel: {latent_dim: 5}\ntrain: {epochs: 3}\n")
    (tmp_path / "middle.yaml").write_text("base: base.yaml\nname: middle\nset: {train.epochs: 4}\n")
    (tmp_path / "top.yaml").write_text("base: middle.yaml\nname: top\nset: {model.prior: {kind: mixture}}\n")
    spec = load_spec(tmp_path / "top.yaml", ["model.latent_dim=6"])
    assert spec.name == "top" and spec.train.epochs == 4 and spec.model.prior.kind == "mixture"
    assert spec.model.latent_dim == 6  # command-line overrides come last


def test_a_base_chain_that_comes_back_to_itself_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\n")
    with pytest.raises(SpecError, match="base chain comes back to itself"):
        load_spec(tmp_path / "a.yaml")
