"""Where a run's progress and numbers are shown: a terminal (live bars), a Jupyter notebook (outputs
redrawn in place) or a pipe or log file (whole lines, never wrapped or cut), and the table of a run's
test numbers that the command line and the Python API print."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from vaezoo.evaluate.records import RunMetrics

#: the width of a console that writes to a pipe or a file: wide enough that no line of a table is wrapped or
#: cut (`vaezoo list | grep discretized_logistic` finds it, whatever $COLUMNS says)
UNWRAPPED = 10_000


def make_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): a terminal's own width, Jupyter's display, else lines that never wrap."""
    console = Console(stderr=stderr)
    if console.is_terminal or console.is_jupyter:
        return console
    return Console(stderr=stderr, width=UNWRAPPED, soft_wrap=True)


def plain(value: Any) -> Text:
    """A value shown as itself: rich reads `[x]` in a plain string as markup and drops it."""
    return Text(str(value))


class NotebookOutput:
    """One output of a Jupyter cell, redrawn in place through IPython's display ids: a progress bar that
    needs no widgets, and that the saved notebook keeps in its last state."""

    #: seconds between redraws: each is a message to the front end
    EVERY = 0.5

    def __init__(self, console: Console, renderable: RenderableType) -> None:
        from IPython.display import display

        self.width = console.width
        self.handle = display(self._bundle(renderable), display_id=True)
        self.shown = time.monotonic()

    def update(self, renderable: RenderableType, force: bool = False) -> None:
        if self.handle is None:  # no IPython shell (a Jupyter console forced outside one): shown once, as text
            return
        if force or time.monotonic() - self.shown >= self.EVERY:
            self.handle.update(self._bundle(renderable))
            self.shown = time.monotonic()

    def _bundle(self, renderable: RenderableType) -> _Bundle:
        recorder = Console(record=True, file=io.StringIO(), width=self.width, force_jupyter=False)
        recorder.print(renderable)
        html = recorder.export_html(inline_styles=True, code_format=_HTML, clear=False)
        return _Bundle(recorder.export_text(clear=False), html)


_HTML = '<pre style="white-space:pre;overflow-x:auto;line-height:normal;font-family:monospace">{code}</pre>\n'


class _Bundle:
    """What IPython displays: the text for a plain front end (and a saved notebook), the HTML for Jupyter."""

    def __init__(self, text: str, html: str) -> None:
        self.text, self.html = text, html

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self.html}


#: what the console shows after a run, in this order (labels, units and digits come from the metric table)
CONSOLE_METRICS = (
    "test_nll_iw",
    "test_neg_elbo",
    "test_recon_nll",
    "test_kl",
    "test_bits_per_dim",
    "active_units",
    "probe_accuracy",
    "test_class_error",  # a semi-supervised model's classifier (None, so not shown, for the others)
    "train_images_per_second",
)


def metrics_table(name: str, metrics: RunMetrics, run_dir: Path) -> Table:
    """A finished run's test numbers as one row, titled with what they are: per image, in nats, the split, K."""
    from vaezoo.evaluate.records import METRIC

    reports = [str(run_dir / file) for file in ("report.pdf", "report.html") if (run_dir / file).exists()]
    table = Table(
        title=plain(
            f"{name}: test set ({metrics.split}), per image, summed over pixels and latents (beta = 1); "
            f"IS with K = {metrics.iw_samples}; {metrics.nll_kind}"
            + (f"; NLL: {metrics.nll_note}" if metrics.nll_note is not None else "")
        ),
        caption=plain(f"run folder {run_dir}" + (f"; report {' and '.join(reports)}" if reports else "")),
    )
    shown = [METRIC[key] for key in CONSOLE_METRICS if metrics.value(key) is not None]
    for metric in shown:
        table.add_column(plain(metric.short), justify="right")
    cells = [metric.format(metrics.value(metric.key)) for metric in shown]
    cells[0] += f" ± {METRIC['test_nll_iw'].format(metrics.test_nll_iw_stderr)}"
    table.add_row(*map(plain, cells))
    return table


def print_metrics(console: Console, name: str, metrics: RunMetrics, run_dir: Path) -> None:
    """The table of a run's test numbers, then the seconds each phase took."""
    from vaezoo.evaluate.records import format_phases

    shown = Group(
        metrics_table(name, metrics, run_dir), plain("seconds per phase: " + format_phases(metrics.phase_seconds))
    )
    if console.is_jupyter:  # one output, whose text (a saved notebook's, a plain front end's) has no colour codes
        NotebookOutput(console, shown)
    else:
        console.print(shown)
