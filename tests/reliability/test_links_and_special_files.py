"""A received run folder with links and special files in it: no write goes through a link or into a
FIFO or device, and no read of a FIFO or device hangs; each refusal is one line at status 2."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.reliability.conftest import fails_with_one_line
from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.outputs.html_page import to_html
from vaezoo.runs.lock import folder_lock


def finishes_in_time(call, seconds: float = 20.0) -> None:
    """Run `call` in a thread: it must return (or raise) within `seconds`, never hang on a FIFO."""
    thread = threading.Thread(target=lambda: pytest.raises(OutputError, call), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read hung"


def test_a_lock_linked_to_a_user_file_leaves_the_file_alone(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(precious)
    with pytest.raises(OutputError), folder_lock(run):
        pass
    assert precious.read_text() == "keep me\n"


def test_a_lock_that_is_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    finishes_in_time(lambda: folder_lock(tmp_path).__enter__())


def test_no_write_through_a_linked_figures_folder_or_onto_a_special_file(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "figures").symlink_to(outside)
    with pytest.raises(OutputError, match="symbolic link"):
        io.ensure_folder(run / "figures")
    with pytest.raises(OutputError, match="symbolic link"):
        io.write_text(run / "figures" / "samples.png", "x")
    assert list(outside.iterdir()) == []
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match="not a regular file"):
        io.write_text(tmp_path / "fifo", "x")
    assert (tmp_path / "fifo").is_fifo()
    with pytest.raises(OutputError, match="not a regular file"):
        io.write_text(Path("/dev/null"), "x")


def test_reads_refuse_fifos_and_devices_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "metrics.json")
    finishes_in_time(lambda: io.read_json(tmp_path / "metrics.json"))
    finishes_in_time(lambda: io.read_jsonl(tmp_path / "metrics.json"))
    finishes_in_time(lambda: io.load_torch(tmp_path / "metrics.json", __import__("torch").device("cpu")))
    finishes_in_time(lambda: io.load_torch(Path("/dev/zero"), __import__("torch").device("cpu")))


def test_a_linked_figure_is_left_out_of_the_html(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret contents")
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "samples.png").symlink_to(secret)
    page = to_html("![samples](figures/samples.png)\n\n![up](../secret.png)\n", run, "t")
    assert "base64" not in page and 'src=""' in page


def test_report_and_eval_refuse_a_fifo_in_place_of_a_run_file(run_copy, capsys):
    run = run_copy / "runs" / "tiny"
    (run / "history.jsonl").unlink()
    os.mkfifo(run / "history.jsonl")
    fails_with_one_line(capsys, ["report", str(run)], "history.jsonl", "not a regular file")
    (run / "checkpoint.pt").unlink()
    os.mkfifo(run / "checkpoint.pt")
    fails_with_one_line(capsys, ["eval", str(run)], "checkpoint.pt")


def test_sample_refuses_to_write_onto_a_fifo(run_copy, capsys, tmp_path):
    os.mkfifo(tmp_path / "out.png")
    fails_with_one_line(
        capsys, ["sample", str(run_copy / "runs" / "tiny"), "--out", str(tmp_path / "out.png")], "not a regular file"
    )
    assert (tmp_path / "out.png").is_fifo()


def test_a_ray_address_that_refuses_fails_in_bounded_time_and_writes_nothing(tmp_path):
    import time

    from vaezoo.core.errors import VaezooError
    from vaezoo.sweeps.ray_executor import check_reachable

    start = time.monotonic()
    with pytest.raises(VaezooError, match="cannot reach the Ray head at 127.0.0.1:1"):
        check_reachable("127.0.0.1:1", seconds=5)
    listener = __import__("socket").create_server(("127.0.0.1", 0), backlog=0)  # freed at once: nothing listens
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(VaezooError, match="cannot reach"):
        check_reachable(f"127.0.0.1:{port}", seconds=1)
    assert time.monotonic() - start < 15
    check_reachable(None)
    check_reachable("auto")
