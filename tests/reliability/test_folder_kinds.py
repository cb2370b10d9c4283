"""Folders are marked as a run or a sweep when vaezoo makes them, and never confused: nothing of vaezoo's
is written into a folder that is neither (no stale temporary deleted, no report.md overwritten, not even
a .lock), a run and a sweep of one name never overwrite each other, and folders an older vaezoo made
(no marker) keep working. Each refusal is one line at status 2 (or an OutputError from the API)."""

import os
from pathlib import Path
from unittest import mock

import pytest
import yaml

import vaezoo
from tests.conftest import tiny_spec
from tests.reliability.conftest import fails_with_one_line, snapshot
from vaezoo.cli.main import main
from vaezoo.core.errors import OutputError
from vaezoo.runs.lock import MARKERS, folder_kind, folder_lock
from vaezoo.sweeps.executors import ExecutorOptions

pytestmark = pytest.mark.reliability


def _foreign(folder: Path) -> dict[str, bytes]:
    """Someone else's folder: a report, a hidden temporary, a spec.yaml and nothing of vaezoo's."""
    folder.mkdir(parents=True)
    (folder / "report.md").write_text("my thesis\n")
    (folder / ".draft.tmp").write_text("unsaved\n")
    (folder / "spec.yaml").write_text("not: yours\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _all_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}  # .lock included: none may appear


def test_vaezoo_marks_what_it_makes(trained, trained_sweep):
    assert (trained / "runs" / "tiny" / MARKERS["run"]).read_text() == "run\n"
    assert (trained_sweep / "runs" / "seeds" / MARKERS["sweep"]).read_text() == "sweep\n"
    points = [trained_sweep / "runs" / "seeds" / name for name in ("seed=0", "seed=1")]
    assert all((point / MARKERS["run"]).read_text() == "run\n" for point in points)


@pytest.mark.parametrize("resume", [True, False])
def test_a_run_into_someone_elses_folder_touches_nothing(run_copy, capsys, resume):
    before = _foreign(run_copy / "runs" / "mine")
    argv = ["run", str(run_copy / "spec.yaml"), "--out", str(run_copy / "runs"), "--set", "name=mine", "--quiet"]
    fails_with_one_line(capsys, argv + (["--resume"] if resume else []), "is not a vaezoo run folder")
    assert _all_files(run_copy / "runs" / "mine") == before


def test_the_api_into_someone_elses_folder_touches_nothing(run_copy, synthetic_root):
    before = _foreign(run_copy / "runs" / "tiny2")
    with pytest.raises(OutputError, match="not a vaezoo run folder"):
        vaezoo.run(tiny_spec(synthetic_root, name="tiny2", train__epochs=1), out=run_copy / "runs")
    assert _all_files(run_copy / "runs" / "tiny2") == before


def test_a_sweep_into_someone_elses_folder_or_point_touches_nothing(sweep_copy, capsys):
    before = _foreign(sweep_copy / "runs" / "other")
    argv = ["sweep", str(sweep_copy / "sweep.yaml"), "--out", str(sweep_copy / "runs"), "--set", "train.epochs=1"]
    data = yaml.safe_load((sweep_copy / "sweep.yaml").read_text()) | {"name": "other"}
    (sweep_copy / "other.yaml").write_text(yaml.safe_dump(data))
    argv[1] = str(sweep_copy / "other.yaml")
    fails_with_one_line(capsys, argv, "is not a vaezoo sweep folder")
    assert _all_files(sweep_copy / "runs" / "other") == before
    sweep_dir = sweep_copy / "runs" / "seeds"  # now one point's folder is someone else's
    point = next(p for p in sweep_dir.iterdir() if p.is_dir())
    for path in point.iterdir():
        path.unlink()
    before_point = _foreign_files_in(point)
    argv[1] = str(sweep_copy / "sweep.yaml")
    fails_with_one_line(capsys, argv, "is not a vaezoo run folder")
    assert {p.name: p.read_bytes() for p in point.iterdir()} == before_point


def _foreign_files_in(folder: Path) -> dict[str, bytes]:
    (folder / "notes.md").write_text("mine\n")
    (folder / ".edit.tmp").write_text("unsaved\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_run_and_a_sweep_of_one_name_do_not_overwrite_each_other(run_copy, sweep_copy, capsys):
    sweep_file = sweep_copy / "tiny.yaml"
    data = yaml.safe_load((sweep_copy / "sweep.yaml").read_text()) | {"name": "tiny"}
    sweep_file.write_text(yaml.safe_dump(data))
    run_dir = run_copy / "runs" / "tiny"
    before = snapshot(run_dir)
    fails_with_one_line(capsys, ["sweep", str(sweep_file), "--out", str(run_copy / "runs")], "is a vaezoo run folder")
    assert snapshot(run_dir) == before
    sweep_dir = sweep_copy / "runs" / "seeds"
    before = snapshot(sweep_dir)
    for resume in ([], ["--resume"]):
        argv = ["run", str(run_copy / "spec.yaml"), "--out", str(sweep_copy / "runs"), "--set", "name=seeds"]
        fails_with_one_line(capsys, argv + resume, "is a vaezoo sweep folder")
    assert snapshot(sweep_dir) == before


def test_folders_an_older_vaezoo_made_keep_working(run_copy, sweep_copy, capsys):
    run_dir = run_copy / "runs" / "tiny"
    (run_dir / MARKERS["run"]).unlink()
    assert folder_kind(run_dir) == "run"
    assert main(["run", str(run_copy / "spec.yaml"), "--out", str(run_copy / "runs"), "--resume", "--quiet"]) == 0
    sweep_dir = sweep_copy / "runs" / "seeds"
    for marker in sweep_dir.rglob(".vaezoo-*"):
        marker.unlink()
    assert folder_kind(sweep_dir) == "sweep"
    assert main(["sweep", str(sweep_copy / "sweep.yaml"), "--out", str(sweep_copy / "runs")]) == 0
    assert (sweep_dir / MARKERS["sweep"]).is_file()


@pytest.mark.parametrize("damage", ["both markers", "marker is a link", "marker is a folder", "a file, not a folder"])
def test_a_confused_or_odd_folder_is_nobodys(tmp_path, damage):
    folder = tmp_path / "x"
    if damage == "a file, not a folder":
        folder.write_text("x")
        assert folder_kind(folder) is None
        return
    folder.mkdir()
    if damage == "both markers":
        for marker in MARKERS.values():
            (folder / marker).write_text("run\n")
    elif damage == "marker is a link":
        (tmp_path / "elsewhere").write_text("run\n")
        (folder / MARKERS["run"]).symlink_to(tmp_path / "elsewhere")
    else:
        (folder / MARKERS["run"]).mkdir()
    assert folder_kind(folder) is None


def test_an_empty_folder_is_new_and_a_lock_alone_does_not_make_it_foreign(tmp_path):
    assert folder_kind(tmp_path / "missing") == "new"
    (tmp_path / "empty").mkdir()
    assert folder_kind(tmp_path / "empty") == "new"
    (tmp_path / "empty" / ".lock").write_text("")
    assert folder_kind(tmp_path / "empty") == "new"


def test_a_ray_driver_holds_every_points_folder_while_its_tasks_train(tmp_path, monkeypatch):
    """Without a shared folder the tasks train elsewhere: a second process must not resume a point meanwhile."""
    pytest.importorskip("ray")
    from vaezoo.sweeps.ray_executor import RayExecutor

    monkeypatch.setattr("vaezoo.sweeps.ray_executor.require_ray", mock.MagicMock)
    executor = RayExecutor(ExecutorOptions())
    executor.ray.get_runtime_context.return_value.get_node_id.return_value = "ab" * 28
    points = [mock.Mock(name=n) for n in ("a", "b")]
    for point, name in zip(points, ("a", "b"), strict=True):
        point.name = name
    refused = []

    def submit(sweep, todo, sweep_dir, board, figures, store, task, shared):
        for point in todo:
            with pytest.raises(OutputError, match="busy"), folder_lock(sweep_dir / point.name):
                pass
            refused.append(point.name)

    monkeypatch.setattr(RayExecutor, "_submit", lambda self, *args: submit(*args))
    executor._run(mock.Mock(), points, tmp_path, mock.Mock(), False)
    assert refused == ["a", "b"]
    with folder_lock(tmp_path / "a"):  # released when the sweep is done
        pass


def test_stale_ray_scratch_folders_are_removed_live_ones_kept(tmp_path):
    from vaezoo.sweeps.ray_executor import SCRATCH_GRACE_SECONDS, remove_stale_scratch

    stale, live, young = (tmp_path / f"vaezoo-point-{n}" for n in ("stale", "live", "young"))
    for folder in (stale, live, young):
        (folder / "tiny").mkdir(parents=True)
        (folder / "tiny" / "checkpoint.pt").write_bytes(b"x" * 10)
    old = os.stat(stale).st_mtime - 2 * SCRATCH_GRACE_SECONDS
    for folder in (stale, live):
        os.utime(folder, (old, old))
    (tmp_path / "vaezoo-point-link").symlink_to(tmp_path / "elsewhere")
    with folder_lock(live, "scratch folder"):
        os.utime(live, (old, old))
        assert remove_stale_scratch(tmp_path) == [stale]
    assert live.is_dir() and young.is_dir() and not stale.exists()
