"""Execute docs/tutorial.md (a jupytext MyST notebook) top to bottom on a tiny budget; exit 1 if a cell fails.

python .ci/tutorial.py [--out NOTEBOOK.ipynb]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also save the executed notebook here")
    args = parser.parse_args()
    notebook = jupytext.read(ROOT / "docs" / "tutorial.md")
    cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    with tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("VAEZOO_TUTORIAL_EPOCHS", "1")
        os.environ.setdefault("VAEZOO_TUTORIAL_IW_SAMPLES", "10")
        os.environ.setdefault("VAEZOO_TUTORIAL_OUT", runs)
        start = time.perf_counter()
        try:
            NotebookClient(
                notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
            ).execute()
        except CellExecutionError as error:
            print(f"tutorial: a cell failed:\n{error}", file=sys.stderr)
            return 1
    if args.out:
        nbformat.write(notebook, args.out)
    print(f"tutorial: {cells} code cells executed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
