"""Input that could exhaust memory or time, or that YAML would silently misread: alias bombs, specs that
never end (/dev/zero, a pipe, a huge file), command-line values the spec would refuse, duplicate keys.
Each is one line and exit 2, within seconds, before anything is written."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from tests.reliability.conftest import fails_with_one_line, snapshot
from vaezoo.core.errors import SpecError
from vaezoo.spec.experiment import MAX_YAML_DEPTH, MAX_YAML_VALUES, parse_yaml

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]


def bomb(indent: str = "") -> str:
    """Anchors l1 .. l9: l1 holds nine strings, each next one nine aliases of the one before, so that
    l9 stands for 9**9 (387 million) values once expanded ("billion laughs")."""
    lines = [f"{indent}l1: &l1 [{', '.join(['lol'] * 9)}]"]
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(2, 10)]
    return "\n".join(lines) + "\n"


def flow_bomb() -> str:
    """The same in one line, as a list of the nine anchored lists (for --set)."""
    levels = [f"&l1 [{', '.join(['lol'] * 9)}]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(2, 10)]
    return "[" + ", ".join(levels) + "]"


def _spec_text(root: Path) -> str:
    return yaml.safe_dump(tiny_spec(root))


def _run(capsys, tmp_path: Path, argv: list[str], *expected: str) -> None:
    start = time.perf_counter()
    fails_with_one_line(capsys, argv, *expected)
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["spec-value", "spec-top-level", "sweep-grid", "sweep-base", "override", "recursive"])
def test_an_alias_bomb_is_refused_in_seconds(tmp_path, synthetic_root, capsys, where):
    spec = tmp_path / "spec.yaml"
    sweep = tmp_path / "sweep.yaml"
    base = _spec_text(synthetic_root)
    anchors = "anchors:\n" + bomb("  ")
    argv = ["run", str(spec), "--out", str(tmp_path / "runs")]
    expected = "values once its aliases are expanded"
    if where == "spec-value":
        text = yaml.safe_dump(tiny_spec(synthetic_root, model__encoder__hidden="BOMB"))
        spec.write_text(anchors + text.replace("BOMB", "*l9"))
    elif where == "spec-top-level":
        spec.write_text(bomb() + base)
    elif where == "sweep-grid":
        spec.write_text(base)
        sweep.write_text(anchors + "name: s\nbase: spec.yaml\ngrid:\n  kl.beta: *l9\n")
        argv = ["sweep", str(sweep), "--out", str(tmp_path / "runs")]
    elif where == "sweep-base":
        spec.write_text(base + anchors + "extra: *l9\n")
        sweep.write_text("name: s\nbase: spec.yaml\nseeds: [0, 1]\n")
        argv = ["sweep", str(sweep), "--out", str(tmp_path / "runs")]
    elif where == "override":
        spec.write_text(base)
        argv += ["--set", f"model.encoder.hidden={flow_bomb()}"]
    else:  # an alias inside its own anchor: an infinitely deep list
        spec.write_text(base + "loop: &loop [1, *loop]\n")
        expected = "refers to a node that contains it"
    _run(capsys, tmp_path, argv, expected)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100 + "]" * 100,
        "[" * 100_000,
        "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)),
        "{a: " * 80 + "1" + "}" * 80,
    ],
)
def test_deep_nesting_is_refused(text):
    start = time.perf_counter()
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_YAML_DEPTH} levels"):
        parse_yaml(text, "spec")
    assert time.perf_counter() - start < 10


def test_a_large_but_plain_document_is_still_read():
    values = parse_yaml("[" + ", ".join("1" for _ in range(MAX_YAML_VALUES // 2)) + "]", "spec")
    assert len(values) == MAX_YAML_VALUES // 2


def test_anchors_and_merges_within_bounds_still_work():
    data = parse_yaml("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n", "spec")
    assert data["child"] == {"x": 1, "y": 3} and data["list"] == [{"x": 1, "y": 2}] * 2


# ---------------------------------------------------------------------------- specs that never end


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vaezoo", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def _assert_one_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("vaezoo: error: "), result.stderr
    assert all(text in lines[0] for text in expected), lines[0]


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("source", ["dev-zero", "fifo", "huge-file", "base-is-dev-zero", "dev-stdin"])
def test_a_spec_that_never_ends_is_refused(tmp_path, source, command):
    """In a process of its own, with a timeout: reading these for ever is what the test guards against."""
    path = tmp_path / "spec.yaml"
    expected = "not a regular file"
    if source == "dev-zero":
        path = Path("/dev/zero")
    elif source == "dev-stdin":
        path = Path("/dev/stdin")
    elif source == "fifo":
        os.mkfifo(path)
    elif source == "huge-file":
        with path.open("wb") as handle:
            handle.write(b"name: huge\n")
            handle.truncate(4 << 30)  # sparse: 4 GiB of zeros that take no disk
        expected = "larger than 1 MiB"
    else:  # a spec (or sweep) whose base is /dev/zero
        path.write_text("name: s\nbase: /dev/zero\n" + ("seeds: [0]\n" if command == "sweep" else ""))
    start = time.perf_counter()
    if source == "dev-stdin":  # an endless pipe on stdin
        with subprocess.Popen(["yes", "a: 1"], stdout=subprocess.PIPE) as producer:
            result = subprocess.run(
                [sys.executable, "-m", "vaezoo", command, str(path), "--out", str(tmp_path / "runs")],
                cwd=REPO, stdin=producer.stdout, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            producer.kill()
    else:
        result = _cli(command, str(path), "--out", str(tmp_path / "runs"))
    _assert_one_line(result, expected)
    assert time.perf_counter() - start < 60 and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------- command-line values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "greater than or equal to 1"),
        ("-5", "greater than or equal to 1"),
        ("1000000000", "less than or equal to 1000000"),
        ("1000001", "less than or equal to 1000000"),
        ("1e9", "invalid int value"),
        ("lots", "invalid int value"),
    ],
)
def test_iw_samples_the_spec_would_refuse_are_refused(run_copy, capsys, value, expected):
    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)
    fails_with_one_line(capsys, ["eval", str(run_dir), "--iw-samples", value], expected)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sample", "-n", "1000000000"], "-n must be from 1 to 10,000, not 1000000000"),
        (["sample", "-n", "0"], "-n must be from 1 to 10,000, not 0"),
        (["interpolate", "--steps", "99999999"], "--steps must be from 1 to 1,000"),
        (["interpolate", "--steps", "-3"], "--steps must be from 1 to 1,000, not -3"),
        (["traverse", "--dims", "50000"], "--dims must be from 1 to 1,000"),
    ],
)
def test_drawing_counts_are_bounded_before_the_run_loads(run_copy, capsys, argv, expected):
    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)
    fails_with_one_line(capsys, [argv[0], str(run_dir), *argv[1:]], expected)
    assert snapshot(run_dir) == before


# ---------------------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: a\nname: b\n", "name", 2),
        ("model:\n  latent_dim: 2\n  encoder: {kind: mlp}\n  latent_dim: 3\n", "latent_dim", 4),
        ("kl: {beta: 1.0, beta: 2.0}\n", "beta", 1),
        ("seed: 1\n1: x\n'seed': 2\n", "seed", 3),
        ("train:\n  lr: 1e-3\n  epochs: 2\ntrain:\n  lr: 1e-2\n", "train", 4),
    ],
)
def test_a_duplicate_key_is_an_error_naming_it_and_its_line(text, key, line):
    with pytest.raises(SpecError, match=rf"at line {line}, .*duplicate key '{key}'"):
        parse_yaml(text, "spec.yaml")


@pytest.mark.parametrize("where", ["spec", "sweep-grid", "sweep-base", "override"])
def test_duplicate_keys_stop_every_command_with_one_line(tmp_path, synthetic_root, capsys, where):
    spec = tmp_path / "spec.yaml"
    sweep = tmp_path / "sweep.yaml"
    base = _spec_text(synthetic_root)
    spec.write_text(base)
    argv = ["run", str(spec), "--out", str(tmp_path / "runs")]
    key = "seed"
    if where == "spec":
        spec.write_text(base + "seed: 3\n")
    elif where == "sweep-grid":
        sweep.write_text("name: s\nbase: spec.yaml\ngrid:\n  kl.beta: [1.0, 2.0]\n  kl.beta: [3.0]\n")
        argv, key = ["sweep", str(sweep), "--out", str(tmp_path / "runs")], "kl.beta"
    elif where == "sweep-base":
        spec.write_text(base + "seed: 3\n")
        sweep.write_text("name: s\nbase: spec.yaml\nseeds: [0, 1]\n")
        argv = ["sweep", str(sweep), "--out", str(tmp_path / "runs")]
    else:
        argv += ["--set", "model.encoder={kind: mlp, hidden: [8], hidden: [16]}"]
        key = "hidden"
    _run(capsys, tmp_path, argv, f"duplicate key '{key}'", "line")
