"""Execute docs/tutorial.md (a jupytext MyST notebook) in a real Jupyter kernel (nbclient) on a tiny budget,
save the executed notebook, and check that its outputs hold what a student sees: the training progress
bar in its last state, the epoch lines, the final table and a Run shown as HTML. Exit 1 if a cell fails
or an output is missing.

python .ci/tutorial.py [--out NOTEBOOK.ipynb]   (default: $TMPDIR/vaezoo-tutorial.ipynb)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]

#: (a line of the cell's source, what its outputs must show, a pattern of it): the tutorial's first run and
#: the Run it shows; the progress bar must be in its last state (every epoch and step done)
EXPECTED = (
    ("run = vaezoo.run(spec, out=OUT)", "the progress bar, finished", r"epoch (\d+)/\1 +━+ +(\d+)/\2"),
    ("run = vaezoo.run(spec, out=OUT)", "a line per epoch", r"epoch +1 +loss [\d.]+ +recon [\d.]+ +KL"),
    ("run = vaezoo.run(spec, out=OUT)", "the final table's title", r"mlp: test set \(.*\), per image"),
    ("run = vaezoo.run(spec, out=OUT)", "the final table's numbers", r"test NLL \(IS\)"),
    ("run = vaezoo.run(spec, out=OUT)", "the evaluation's phases", r"importance sampling, K = \d+ \(images\): "),
    ("run\n", "the Run as HTML", r"<strong>vaezoo run mlp</strong>"),
    ("run\n", "the Run's figures inline", r'src="data:image/png;base64,'),
)


def output_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell's outputs show, as text: streams, and each display's text and HTML."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts += [output.data.get("text/plain", ""), output.data.get("text/html", "")]
        elif output.output_type == "error":
            parts.append("\n".join(output.traceback))
    return "\n".join(parts)


def missing_outputs(notebook: nbformat.NotebookNode, expected=EXPECTED) -> list[str]:
    """What the executed notebook should show and does not, one line each."""
    problems = []
    for line, what, pattern in expected:
        cells = [c for c in notebook.cells if c.cell_type == "code" and line in c.source + "\n"]
        if not cells:
            problems.append(f"no cell has {line.strip()!r}")
        elif not any(re.search(pattern, output_text(cell)) for cell in cells):
            problems.append(f"the cell {line.strip()!r} does not show {what} (/{pattern}/)")
    return problems


def execute(notebook: nbformat.NotebookNode, cwd: Path, timeout: int = 900) -> str | None:
    """Run every cell in a fresh python3 kernel; the first failing cell's error, or None."""
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        return str(error)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "vaezoo-tutorial.ipynb"))
    args = parser.parse_args()
    notebook = jupytext.read(ROOT / "docs" / "tutorial.md")
    cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    with tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("VAEZOO_TUTORIAL_EPOCHS", "1")
        os.environ.setdefault("VAEZOO_TUTORIAL_IW_SAMPLES", "10")
        os.environ.setdefault("VAEZOO_TUTORIAL_OUT", runs)
        start = time.perf_counter()
        failure = execute(notebook, ROOT)
    nbformat.write(notebook, args.out)  # also when a cell failed: its outputs say how
    print(f"tutorial: the executed notebook is {args.out}")
    if failure is not None:
        print(f"tutorial: a cell failed:\n{failure}", file=sys.stderr)
        return 1
    problems = missing_outputs(notebook)
    for problem in problems:
        print(f"tutorial: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"tutorial: {cells} code cells executed in {time.perf_counter() - start:.0f} s; progress and tables shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
