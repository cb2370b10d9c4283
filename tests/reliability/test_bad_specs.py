"""Malformed specs, generated: every one exits with status 2 and one line, no traceback, nothing written."""

import copy
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import tiny_spec
from vaezoo.cli.main import main

pytestmark = pytest.mark.reliability

# (path, a value that is wrong there): wrong types, zero and negative sizes, NaN, infinities, huge numbers
BAD_VALUES = {
    ("seed",): [-1, 1.5, "zero", [0], 2**70],
    ("model", "latent_dim"): [0, -3, 2.0, "20", 10**12, None, True],
    ("model", "encoder", "hidden"): [[], [0], [-4], [10**9], "400", [[400]], [400.5]],
    ("model", "decoder", "activation"): ["sigmoidish", 3],
    ("model", "likelihood", "kind"): ["poisson", "", None],
    ("kl", "beta"): [-0.5, math.nan, math.inf, 1e300, "one"],
    ("kl", "kind"): ["exponential", 7],
    ("train", "lr"): [0, -1e-3, math.nan, math.inf, 1e300],
    ("train", "epochs"): [0, -1, 1e30, 2.5],
    ("train", "batch_size"): [0, -128, 10**8],
    ("train", "device"): ["tpu", ""],
    ("data", "binarize"): ["sometimes", True],
    ("data", "val_size"): [-1, 10**7],
    ("data", "dataset"): ["cifar", 10],
    ("eval", "iw_samples"): [0, -5000, 10**9],
    ("name",): ["../escape", "/abs/path", "", ".hidden", "a/b", "x" * 500],
}
SECTIONS = ["data", "model", "kl", "train", "eval"]


@st.composite
def malformed(draw, root):
    spec = copy.deepcopy(tiny_spec(root))
    kind = draw(st.sampled_from(["value", "unknown_key", "nesting"]))
    if kind == "value":
        path = draw(st.sampled_from(sorted(BAD_VALUES)))
        node = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(st.sampled_from(BAD_VALUES[path]))
    elif kind == "unknown_key":
        section = draw(st.sampled_from([None, *SECTIONS, "encoder"]))
        node = spec if section is None else spec["model"]["encoder"] if section == "encoder" else spec[section]
        key = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(lambda k: k not in node))
        node[key] = draw(st.one_of(st.integers(), st.text(max_size=5)))
    else:
        section = draw(st.sampled_from(SECTIONS))
        spec[section] = draw(st.sampled_from([[spec[section]], "oops", 3, None]))
        if spec[section] is None and section != "model":
            spec[section] = []
    return spec


def check_rejected(tmp_path, capsys, content: bytes) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    out = tmp_path / "runs"
    code = main(["run", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("vaezoo: error: ") and "Traceback" not in err
    assert not out.exists()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_malformed_specs_exit_2_with_one_line(tmp_path, capsys, synthetic_root, data):
    spec = data.draw(malformed(synthetic_root))
    check_rejected(tmp_path, capsys, yaml.safe_dump(spec, allow_unicode=True).encode())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=64))
def test_arbitrary_bytes_exit_2_with_one_line(tmp_path, capsys, content):
    check_rejected(tmp_path, capsys, content)


@pytest.mark.parametrize(
    "content", [b"", b"\n\n", b"# only a comment\n", b"\xff\xfe\xfd", b"name: \x80x", b"[", b"- 1", b"7", b"~"]
)
def test_fixed_bad_files(tmp_path, capsys, content):
    check_rejected(tmp_path, capsys, content)
