"""What a sweep shows while it runs: a rich table of its points (done, running, left) with each
finished point's headline numbers, redrawn in place on a terminal and printed as lines elsewhere."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from vaezoo.evaluate.records import RunMetrics
from vaezoo.sweeps.grid import Point

LEFT, RUNNING, DONE, FAILED = "left", "running", "done", "failed"


class SweepBoard:
    """The console overview of a sweep: points done, running and left, with each headline number.

    Executors call `running`, `finished` and `failed` as points move; `attempt` > 1 marks a point
    that an executor retried after its worker died.
    """

    def __init__(self, points: list[Point], sweep_dir: Path, console: Console | None) -> None:
        self.console = console
        self.sweep_dir = sweep_dir
        self.states = {p.name: LEFT for p in points}
        self.notes: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.start_time = time.perf_counter()
        self._live: Live | None = None

    def start(self, todo: list[Point]) -> None:
        todo_names = {p.name for p in todo}
        for name in self.states:
            if name not in todo_names:
                self.states[name] = DONE
                self.notes[name] = "finished earlier"
        self._print(
            f"sweep {self.sweep_dir}: {len(self.states)} points, {len(self.states) - len(todo)} already finished, "
            f"{len(todo)} to run"
        )
        if self.console is not None and self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, auto_refresh=False, transient=False)
            self._live.start()

    def running(self, name: str, attempt: int = 1) -> None:
        """Mark `name` running at `attempt`; a point already finished, or already running at that attempt,
        is left as it is (so an executor may report what it polled, repeats included)."""
        if self.states[name] in (DONE, FAILED) or (self.states[name] == RUNNING and self.attempts[name] >= attempt):
            return
        self.states[name] = RUNNING
        self.attempts[name] = attempt
        self.notes[name] = f"attempt {attempt}" if attempt > 1 else ""
        self._print(f"  running  {name}" + (f" (attempt {attempt}, after its worker died)" if attempt > 1 else ""))

    def finished(self, name: str, metrics: RunMetrics, attempt: int = 1) -> None:
        self.states[name] = DONE
        retried = f", attempt {attempt}" if attempt > 1 else ""
        self.notes[name] = (
            f"test NLL (IS, K = {metrics.iw_samples}) {metrics.test_nll_iw:.2f}, -ELBO {metrics.test_neg_elbo:.2f} "
            f"nats/image ({metrics.train_seconds:.0f} s training{retried})"
        )
        self._print(f"  [{self.counts()}] {name}: {self.notes[name]}")

    def failed(self, name: str, reason: str) -> None:
        self.states[name] = FAILED
        self.notes[name] = reason
        self._print(f"  [{self.counts()}] {name} FAILED: {reason}")

    def counts(self) -> str:
        """`d done, r running, l left` (and failed ones, if any)."""
        tally = {state: list(self.states.values()).count(state) for state in (DONE, RUNNING, LEFT, FAILED)}
        text = f"{tally[DONE]} done, {tally[RUNNING]} running, {tally[LEFT]} left"
        return text + (f", {tally[FAILED]} failed" if tally[FAILED] else "")

    def table(self) -> Table:
        table = Table(title=f"sweep {self.sweep_dir.name}: {self.counts()}", title_justify="left")
        table.add_column("point")
        table.add_column("state")
        table.add_column("result")
        for name, state in self.states.items():
            table.add_row(name, state, self.notes.get(name, ""))
        return table

    def close(self, stopped: bool = False) -> None:
        if self._live is not None:
            self._live.update(self.table(), refresh=True)
            self._live.stop()
            self._live = None
        seconds = time.perf_counter() - self.start_time
        if stopped:
            self._print(f"sweep stopped after {seconds:.0f} s ({self.counts()}); run it again to resume")
        else:
            self._print(f"sweep done in {seconds:.0f} s: results in {self.sweep_dir}")

    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.update(self.table(), refresh=True)
        elif self.console is not None:
            self.console.print(text, highlight=False)
