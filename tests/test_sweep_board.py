"""The sweep's console board: its counts follow the points, a retry is marked, and the table it draws
on a terminal (or the lines it prints to a log) name every point with its state and numbers."""

from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from vaezoo.sweeps.board import SweepBoard

NAMES = ["beta=0.5", "beta=1.0", "beta=2.0"]


def metrics(nll: float) -> SimpleNamespace:
    return SimpleNamespace(iw_samples=100, test_nll_iw=nll, test_neg_elbo=nll + 5, train_seconds=3.0)


@pytest.mark.parametrize("terminal", [True, False])
def test_the_board_counts_points_marks_retries_and_shows_every_point(terminal):
    out = StringIO()
    console = Console(file=out, force_terminal=terminal, width=160)
    points = [SimpleNamespace(name=name) for name in NAMES]
    board = SweepBoard(points, Path("runs/abl"), console)
    board.start(points[1:])  # the first finished earlier
    assert board.counts() == "1 done, 0 running, 2 left"
    board.running("beta=1.0")
    board.running("beta=2.0")
    board.running("beta=2.0", attempt=2)  # its worker died
    assert board.counts() == "1 done, 2 running, 0 left"
    board.finished("beta=1.0", metrics(99.5))
    board.failed("beta=2.0", "diverged")
    assert board.counts() == "2 done, 0 running, 0 left, 1 failed"
    board.close(stopped=True)
    text = out.getvalue()
    for expected in ["test NLL (IS, K = 100) 99.50", "diverged", "attempt 2", "run it again to resume"]:
        assert expected in text
    # a terminal gets the table, every point in it; a log gets a line per event
    assert (
        "finished earlier" in text and all(name in text for name in NAMES) if terminal else "1 already finished" in text
    )
