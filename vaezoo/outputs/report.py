"""A run's report: report.md (GitHub markdown), a self-contained report.html (images embedded, the
mathematics as MathML) and report.pdf (typeset with typst, its source report.typ beside it), all three
written from one Document (run_pdf.run_document) by doc_files.write_document.

Everything comes from the run's saved spec, metrics, history and figure files, so a report can be
rewritten without the model; a figure whose file is absent is left out. The student's discussion in
an existing report.typ (or report.md) is kept.
"""

from __future__ import annotations

from pathlib import Path

from vaezoo.evaluate.records import HistoryRow, RunMetrics
from vaezoo.outputs.doc_files import write_document
from vaezoo.outputs.document import to_markdown
from vaezoo.outputs.run_pdf import run_document
from vaezoo.outputs.run_tables import RunTables, run_tables
from vaezoo.spec.experiment import ExperimentSpec


def run_markdown(report: RunTables, run_dir: Path = Path(".")) -> str:
    """report.md of one run (figure paths relative to its folder)."""
    return to_markdown(run_document(run_dir, report))


def write_run_report(run_dir: Path, spec: ExperimentSpec, metrics: RunMetrics, history: list[HistoryRow]) -> Path:
    """Write run_dir/report.md, report.html, report.typ and report.pdf from the run's saved metrics,
    history and figures, keeping the discussion of a report already there."""
    write_document(run_dir, run_document(run_dir, run_tables(run_dir, spec, metrics, history)))
    return run_dir / "report.md"
