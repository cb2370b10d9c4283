"""What a training run shows while it runs: device-side running losses read without stalling the
GPU, and the rich progress bar with one line per epoch."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from vaezoo.evaluate.console import NotebookOutput

Advance = Callable[[int], None]


@contextlib.contextmanager
def quiet_phase(name: str, total: int | None = None, key: str | None = None) -> Iterator[Advance]:
    """A phase that shows and records nothing."""
    yield lambda done: None


class PhaseView:
    """What a run does after training: a progress bar with ETA while a phase runs (where it has a size),
    then one line with the phase's seconds; `seconds` keeps each phase's time under its key."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None, key: str | None = None) -> Iterator[Advance]:
        start = time.perf_counter()
        with self._shown(name, total) as (advance, close):
            yield advance
            self.seconds[key or name] = time.perf_counter() - start
            close(f"{name}: {self.seconds[key or name]:.1f} s")

    @contextlib.contextmanager
    def _shown(self, name: str, total: int | None) -> Iterator[tuple[Advance, Callable[[str], None]]]:
        """(advance, close): the phase's bar, and what shows its closing line (in a notebook, in the bar's place)."""
        console = self.console
        if console is None:
            yield (lambda done: None), (lambda line: None)
            return
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
        task = progress.add_task(name, total=total)
        output = NotebookOutput(console, progress.get_renderable()) if console.is_jupyter else None

        def advance(done: int) -> None:
            progress.update(task, advance=done)
            if output is not None:
                output.update(progress.get_renderable())

        def close(line: str) -> None:
            if output is not None:
                output.update(Text(line), force=True)
            else:  # a terminal's bar goes (transient); a log file gets only this line
                console.print(line, markup=False, highlight=False)

        with progress:
            yield advance, close
