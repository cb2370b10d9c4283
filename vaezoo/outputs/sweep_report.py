"""A sweep's files: results.csv, results.md (one row per point, mean ± std over seeds), the
comparison figures and report.md / report.html / report.pdf (sweep_pdf). What they show is computed
by sweep_tables from the sweep's typed `SweepSummary`; this module only formats it (every cell and
note is Markdown, its values already escaped, which html_page and sweep_pdf read back)."""

from __future__ import annotations

import csv
import io as stdio
import re
from pathlib import Path
from typing import Any

from vaezoo.core import io
from vaezoo.outputs.assignment import assignment_document, is_assignment, write_assignment_figures
from vaezoo.outputs.doc_files import write_document
from vaezoo.outputs.escape import unescape_markdown
from vaezoo.outputs.figures import comparison_kinds
from vaezoo.outputs.sweep_entries import SweepEntry, cell
from vaezoo.outputs.sweep_figures import save_comparison_grid, save_curves_comparison, save_rate_distortion
from vaezoo.outputs.sweep_files import SweepSummary
from vaezoo.outputs.sweep_pdf import sweep_document
from vaezoo.outputs.sweep_tables import csv_rows, sweep_rows, sweep_tables


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of Markdown cells (values in them already escaped, so a | never splits a cell)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def sweep_table(entries: list[SweepEntry], keys: list[str], headline: str) -> str:
    """The Markdown results table of `entries` (see sweep_tables.sweep_rows)."""
    return markdown_table(*sweep_rows(entries, keys, headline))


def write_sweep_report(summary: SweepSummary, sweep_dir: Path) -> Path:
    """results.csv, results.md, comparison figures and report.md / report.html / report.typ / report.pdf
    of a finished sweep, everything read from its saved runs (see sweep_files.read_sweep). An
    assignment sweep (assignment.is_assignment) writes the assignment's hand-in as its report."""
    tables = sweep_tables(summary, sweep_dir)
    _write_csv(sweep_dir / "results.csv", csv_rows(summary))
    table_md = markdown_table(tables.header, tables.rows)
    io.write_text(sweep_dir / "results.md", f"# {tables.caption}\n\n{table_md}\n")
    _write_figures(summary, sweep_dir)
    if is_assignment(summary):
        doc = assignment_document(sweep_dir, tables)
    else:
        doc = sweep_document(sweep_dir, tables)
    write_document(sweep_dir, doc)
    return sweep_dir / "report.md"


def _write_figures(summary: SweepSummary, sweep_dir: Path) -> Path:
    """The comparison grids of every kind with strips, every run's curves and the rate-distortion plot."""
    figure_dir = io.ensure_folder(sweep_dir / "figures")
    labelled = [(point.name, sweep_dir / point.name) for point in summary.points]
    for kind in comparison_kinds():
        save_comparison_grid(kind, labelled, figure_dir / f"{kind}_grid.png")
    histories = [(point.name, point.history) for point in summary.points]
    save_curves_comparison(histories, figure_dir / "curves_grid.png")
    save_rate_distortion(
        [(point.name, point.metrics.test_kl, point.metrics.test_recon_nll) for point in summary.points],
        figure_dir / "rate_distortion.png",
    )
    if is_assignment(summary):
        write_assignment_figures(summary, figure_dir)
    return figure_dir


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows([{k: cell(v) for k, v in row.items()} for row in rows])
    io.write_text(path, buffer.getvalue())


def load_results_table(sweep_dir: Path) -> Any:
    """results.md of a sweep as a rich Table, for the console."""
    from rich.table import Table

    lines = (sweep_dir / "results.md").read_text().splitlines()
    rows = [
        [unescape_markdown(cell.strip()) for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        for line in lines
        if line.startswith("|")
    ]
    table = Table(title=lines[0].lstrip("# "), title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows[2:]:
        table.add_row(*row)
    return table
