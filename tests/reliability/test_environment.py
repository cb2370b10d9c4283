"""What the machine refuses: a full disk (a real small tmpfs, and ENOSPC injected in this process), read-only
folders, unreadable data files, over-long paths and `~unknownuser` in a data root. Each is one line and
exit 2, and leaves no temporary or half-written file behind."""

import contextlib
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import skip_figures, tiny_spec
from tests.reliability.conftest import fails_with_one_line, no_temporaries, snapshot
from vaezoo.cli.main import main
from vaezoo.core import io
from vaezoo.data import acquire, idx

pytestmark = pytest.mark.reliability

NO_SPACE = os.strerror(errno.ENOSPC)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str):
    """A tmpfs of `size` mounted on `folder` (needs root and a kernel that lets this process mount)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only: a read-only bind mount as root (chmod does not stop root), else chmod a-w."""
    if os.geteuid() == 0:
        try:
            _mount("--bind", str(folder), str(folder))
        except (OSError, subprocess.CalledProcessError) as error:
            pytest.skip(f"cannot bind-mount here: {error}")
        try:
            _mount("-o", "remount,bind,ro", str(folder))
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=False)
        return
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for path in paths:
        path.chmod(modes[path] & ~0o222)
    try:
        yield folder
    finally:
        for path in reversed(paths):
            path.chmod(modes[path])


def assert_nothing_half_written(folder: Path) -> None:
    """No temporary left, and every JSON file there whole (atomic writes: the old file or the new one)."""
    assert not no_temporaries(folder)
    for path in folder.rglob("*.json"):
        json.loads(path.read_text())
    for path in folder.rglob("*.jsonl"):
        io.read_jsonl(path)


# ---------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize(
    "size",
    ["4k", "64k", "1m", pytest.param("1300k", marks=pytest.mark.slow), pytest.param("2m", marks=pytest.mark.slow)],
)
def test_a_run_on_a_full_filesystem_is_one_line_and_resumes_once_there_is_room(
    tmp_path, synthetic_root, capsys, monkeypatch, size
):
    """Sizes chosen to fill up at the first checkpoint, the second, the figures and the report."""
    if size not in ("1300k", "2m"):  # the larger ones fill up in the figures and the report
        skip_figures(monkeypatch.setattr)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=2)))
    with small_filesystem(tmp_path / "disk", size) as disk:
        argv = ["run", str(spec), "--out", str(disk), "--quiet"]
        fails_with_one_line(capsys, argv, NO_SPACE, str(disk / "tiny"))
        assert_nothing_half_written(disk)
        assert not (disk / "tiny" / "metrics.json").exists()
        _mount("-o", "remount,size=64m", str(disk))
        assert main([*argv, "--resume"]) == 0
        assert_nothing_half_written(disk)


class _FullAfter:
    """A file that takes `room` bytes, then raises ENOSPC (as a disk does that fills while writing)."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, NO_SPACE)
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


@pytest.mark.parametrize("room", [0, 512, 4096, 200_000])
def test_a_disk_that_fills_while_writing_is_one_line_naming_the_file(
    tmp_path, synthetic_root, capsys, no_figures, monkeypatch, room
):
    """In this process: 0 bytes fill up inside the run folder's marker (.vaezoo-run, its first file), 512
    inside spec.yaml, 4096 and 200000 inside the checkpoint (torch.save turns the ENOSPC into a
    RuntimeError that no longer says so)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=1)))
    fdopen = os.fdopen
    monkeypatch.setattr(io.os, "fdopen", lambda fd, mode: _FullAfter(fdopen(fd, mode), room))
    out = tmp_path / "runs"
    name = ".vaezoo-run" if room == 0 else "spec.yaml" if room < 1024 else "checkpoint.pt"
    fails_with_one_line(capsys, ["run", str(spec), "--out", str(out), "--quiet"], NO_SPACE, str(out / "tiny" / name))
    assert_nothing_half_written(out)


@pytest.mark.parametrize("failing", [1, 2, 3, 4, 5])
def test_enospc_at_fsync_is_one_line_for_each_file_a_run_writes(
    tmp_path, synthetic_root, capsys, no_figures, monkeypatch, failing
):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=1)))
    calls = []
    fsync = os.fsync

    def full(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing:
            raise OSError(errno.ENOSPC, NO_SPACE)
        fsync(fd)

    monkeypatch.setattr(io.os, "fsync", full)
    out = tmp_path / "runs"
    name = [".vaezoo-run", "spec.yaml", "checkpoint.pt", "history.jsonl", "scalars.csv"][failing - 1]
    fails_with_one_line(capsys, ["run", str(spec), "--out", str(out), "--quiet"], NO_SPACE, name)
    assert_nothing_half_written(out)


@pytest.mark.parametrize("command", ["eval", "figures", "report"])
def test_enospc_in_commands_on_a_finished_run_changes_nothing(run_copy, capsys, monkeypatch, command):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)
    monkeypatch.setattr(io.os, "fsync", full)
    fails_with_one_line(capsys, [command, str(run_dir)], NO_SPACE, str(run_dir))
    assert snapshot(run_dir) == before and not no_temporaries(run_dir)


# ---------------------------------------------------------------------------- read-only folders


@pytest.mark.parametrize("command", ["eval", "figures", "report"])
def test_commands_on_a_read_only_run_folder_are_one_line(run_copy, capsys, command):
    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)
    with read_only(run_copy):
        fails_with_one_line(capsys, [command, str(run_dir)], str(run_dir))
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("command", ["report", "rerun"])
def test_a_read_only_sweep_folder_is_one_line(sweep_copy, capsys, no_figures, command):
    sweep_dir = sweep_copy / "runs" / "seeds"
    before = snapshot(sweep_dir)
    argv = ["report", str(sweep_dir)]
    if command == "rerun":
        argv = ["sweep", str(sweep_copy / "sweep.yaml"), "--out", str(sweep_copy / "runs")]
    with read_only(sweep_copy):
        fails_with_one_line(capsys, argv, str(sweep_dir))
    assert snapshot(sweep_dir) == before


def test_a_new_run_into_a_read_only_folder_is_one_line(tmp_path, synthetic_root, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root)))
    (tmp_path / "out").mkdir()
    with read_only(tmp_path / "out"):
        fails_with_one_line(capsys, ["run", str(spec), "--out", str(tmp_path / "out")], "cannot write")


# ---------------------------------------------------------------------------- unreadable data


@pytest.fixture
def data_copy(synthetic_root, tmp_path) -> Path:
    shutil.copytree(synthetic_root, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("file", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_a_data_file_without_read_permission_is_one_line(tmp_path, data_copy, capsys, file):
    path = next(data_copy.rglob(file))
    path.chmod(0)
    try:
        with contextlib.suppress(PermissionError), path.open("rb"):
            pytest.skip("this user (root?) reads files whatever their mode")
        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump(tiny_spec(data_copy)))
        fails_with_one_line(capsys, ["run", str(spec), "--out", str(tmp_path / "runs")], str(path), "ermission")
    finally:
        path.chmod(0o644)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("file", ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
@pytest.mark.parametrize("when", ["checksum", "reading"])
def test_a_data_file_the_system_refuses_to_read_is_one_line(
    tmp_path, synthetic_root, capsys, monkeypatch, no_figures, file, when
):
    """In this process (root reads any file): opening the file raises EACCES, at its checksum or once verified."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(synthetic_root, train__epochs=1)))
    real_open = open
    refuse = {"now": when == "checksum"}  # "reading": once the checksums have passed
    verify = acquire.verify_files

    def verified(*args, **kwargs):
        verify(*args, **kwargs)
        refuse["now"] = True

    def refusing(path, *args, **kwargs):
        if Path(path).name == file and refuse["now"]:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(acquire, "verify_files", verified)
    monkeypatch.setattr(idx, "open", refusing, raising=False)
    out = tmp_path / "runs"
    fails_with_one_line(capsys, ["run", str(spec), "--out", str(out), "--quiet"], "cannot read data file", file)
    assert_nothing_half_written(tmp_path)


# ---------------------------------------------------------------------------- over-long paths and unknown users

LONG = "x" * 300  # one path component past NAME_MAX (255)


@pytest.mark.parametrize(
    "where", ["run-out", "sweep-out", "eval", "report", "data-root", "vaezoo-data", "spec", "data-check"]
)
def test_an_over_long_path_is_one_line(tmp_path, synthetic_root, capsys, monkeypatch, where):
    spec_data = tiny_spec(synthetic_root)
    if where == "data-root":
        spec_data["data"]["root"] = str(tmp_path / LONG)
    if where == "vaezoo-data":
        del spec_data["data"]["root"]
        monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / LONG))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "base": spec_data, "seeds": [0, 1]}))
    argv = {
        "run-out": ["run", str(spec), "--out", str(tmp_path / LONG)],
        "sweep-out": ["sweep", str(sweep), "--out", str(tmp_path / LONG)],
        "eval": ["eval", str(tmp_path / LONG / "tiny")],
        "report": ["report", str(tmp_path / LONG)],
        "data-root": ["run", str(spec), "--out", str(tmp_path / "runs")],
        "vaezoo-data": ["run", str(spec), "--out", str(tmp_path / "runs")],
        "spec": ["run", str(tmp_path / f"{LONG}.yaml"), "--out", str(tmp_path / "runs")],
        "data-check": ["data", "check", "mnist", "--root", str(tmp_path / LONG)],
    }[where]
    fails_with_one_line(capsys, argv, os.strerror(errno.ENAMETOOLONG))
    assert not (tmp_path / "runs").exists()


UNKNOWN = "~no_such_user_vaezoo"


@pytest.mark.parametrize("where", ["vaezoo-data", "data-root", "data-root-subfolder", "sweep-base", "data-check"])
def test_an_unknown_user_in_a_data_root_is_one_line(tmp_path, synthetic_root, capsys, monkeypatch, where):
    spec_data = tiny_spec(synthetic_root)
    if where == "vaezoo-data" or where == "data-check":
        del spec_data["data"]["root"]
        monkeypatch.setenv("VAEZOO_DATA", f"{UNKNOWN}/data")
    else:
        spec_data["data"]["root"] = UNKNOWN if where == "data-root" else f"{UNKNOWN}/vaezoo/data"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "base": spec_data, "grid": {"kl.beta": [1.0, 2.0]}}))
    argv = {
        "sweep-base": ["sweep", str(sweep), "--out", str(tmp_path / "runs")],
        "data-check": ["data", "check", "mnist"],
    }
    command = argv.get(where, ["run", str(spec), "--out", str(tmp_path / "runs")])
    fails_with_one_line(capsys, command, UNKNOWN, "not a known user")
    assert not (tmp_path / "runs").exists()
