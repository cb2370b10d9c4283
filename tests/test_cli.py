"""Every kind of bad input exits with status 2 and one line naming the problem, and writes nothing."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_spec
from tests.synthetic import FILES, SyntheticMNIST
from vaezoo.cli.main import main


def write_spec(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaezoo: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"modle": 1}, ["modle: unknown key"]),
        ({"model": {"encoder": {"kind": "transformer"}}}, ["model.encoder", "'transformer'"]),
        ({"model": {"latent_dim": "two"}}, ["model.latent_dim", "valid integer"]),
        ({"model": {"latent_dim": -2}}, ["model.latent_dim", "greater than or equal to 1"]),
        ({"model": {"encoder": {"kind": "mlp", "hidden": [64, 0]}}}, ["model.encoder.hidden.1"]),
        (
            {"model": {"encoder": {"kind": "conv", "channels": [8] * 6, "kernel": 4, "stride": 2}}},
            ["model:", "shrinks"],
        ),
        ({"train": {"batch_size": 0}}, ["train.batch_size"]),
    ],
)
def test_bad_spec_values(tmp_path, capsys, synthetic_root, change, fragments):
    spec = tiny_spec(synthetic_root) | change
    path = write_spec(tmp_path / "bad.yaml", spec)
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "empty"), (b"[1, 2]", "mapping"), (b"a: [", "invalid YAML"), (b"\xff\xfe\x00", "UTF-8")],
)
def test_bad_spec_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "runs").exists()


def test_missing_spec_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, "spec file not found", "nope.yaml")


def test_bad_override(tmp_path, capsys, synthetic_root):
    path = write_spec(tmp_path / "ok.yaml", tiny_spec(synthetic_root))
    code, _, err = run_cli(capsys, "run", str(path), "--set", "model.latent_dim=0", "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, "model.latent_dim")
    code, _, err = run_cli(capsys, "run", str(path), "--set", "latent_dim", "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, "KEY=VALUE")


def test_unknown_command_and_option_are_one_line(capsys):
    assert_one_line_error(*run_cli(capsys, "fly")[::2], "invalid choice")
    assert_one_line_error(*run_cli(capsys, "run")[::2], "required")


def copied_data(tmp_path: Path, synthetic_root: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    return root


def test_missing_data_file(tmp_path, capsys, synthetic_root):
    root = copied_data(tmp_path, synthetic_root)
    (root / SyntheticMNIST.__name__ / "raw" / FILES[2]).unlink()
    path = write_spec(tmp_path / "s.yaml", tiny_spec(root))
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, "missing data file", FILES[2])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_data_file(tmp_path, capsys, synthetic_root, damage):
    root = copied_data(tmp_path, synthetic_root)
    target = root / SyntheticMNIST.__name__ / "raw" / FILES[0]
    content = bytearray(target.read_bytes())
    if damage == "flip":
        content[500] ^= 0xFF
    else:
        content = content[: len(content) // 2]
    target.write_bytes(bytes(content))
    path = write_spec(tmp_path / "s.yaml", tiny_spec(root))
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "runs"))
    assert_one_line_error(code, err, FILES[0], "md5")
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_folder(tmp_path, capsys, synthetic_root):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write_spec(tmp_path / "s.yaml", tiny_spec(synthetic_root))
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(blocker / "runs"))
    assert_one_line_error(code, err, "cannot write run folder")
    assert blocker.read_text() == "not a folder"


def test_existing_run_is_not_overwritten_without_resume(tmp_path, capsys, synthetic_root, no_figures):
    path = write_spec(tmp_path / "s.yaml", tiny_spec(synthetic_root))
    out = tmp_path / "runs"
    assert run_cli(capsys, "run", str(path), "--out", str(out), "--quiet")[0] == 0
    before = (out / "tiny" / "metrics.json").read_bytes()
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(out))
    assert_one_line_error(code, err, "already exists", "--resume")
    code, _, err = run_cli(capsys, "run", str(path), "--out", str(out), "--resume", "--set", "seed=3")
    assert_one_line_error(code, err, "differs from this spec at seed")
    assert (out / "tiny" / "metrics.json").read_bytes() == before


def test_console_script_in_its_own_process(tmp_path, synthetic_root):
    """The real entry point: exit status 2 and one line on stderr, from a fresh interpreter."""
    path = write_spec(tmp_path / "bad.yaml", {"name": "x", "model": {"encoder": {"kind": "mlp", "hidden": [0]}}})
    result = subprocess.run(
        [sys.executable, "-m", "vaezoo", "run", str(path), "--out", str(tmp_path / "runs")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert_one_line_error(result.returncode, result.stderr, "model.encoder.hidden.0")
    assert result.stdout == ""


def test_list_shows_every_component(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("mlp", "conv", "bernoulli", "gaussian", "constant", "linear", "cyclical", "mnist", "fashion-mnist"):
        assert name in out
    assert "warmup_steps" in out and "channels" in out


@pytest.mark.parametrize("args", [["--help"], ["list"], ["run", "BAD"]], ids=["help", "list", "spec-error"])
def test_start_up_paths_import_neither_torchvision_nor_matplotlib(tmp_path, args):
    bad = write_spec(tmp_path / "bad.yaml", {"name": "x", "model": {"encoder": {"kind": "mlp", "hidden": [0]}}})
    argv = [str(bad) if a == "BAD" else a for a in args]
    code = (
        "import contextlib, io, sys\nfrom vaezoo.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torchvision', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
