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
from urllib.parse import quote

from vaezoo.core import io
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.escape import unescape_markdown
from vaezoo.outputs.figures import comparison_kinds
from vaezoo.outputs.html_page import to_html
from vaezoo.outputs.paired import PairedDifference, config_label
from vaezoo.outputs.sweep_entries import SweepEntry, cell
from vaezoo.outputs.sweep_figures import save_comparison_grid, save_curves_comparison, save_rate_distortion
from vaezoo.outputs.sweep_files import SweepSummary
from vaezoo.outputs.sweep_pdf import write_sweep_pdf
from vaezoo.outputs.sweep_tables import SweepTables, csv_rows, sweep_rows, sweep_tables


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of Markdown cells (values in them already escaped, so a | never splits a cell)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def sweep_table(entries: list[SweepEntry], keys: list[str], headline: str) -> str:
    """The Markdown results table of `entries` (see sweep_tables.sweep_rows)."""
    return markdown_table(*sweep_rows(entries, keys, headline))


def paired_section(differences: list[PairedDifference] | None, first: tuple[str, dict[str, Any]]) -> str | None:
    """The report's section of paired differences against the first point (`first`), or None."""
    if not differences:
        return None
    lines = [
        "## Paired differences",
        "",
        (
            f"Test NLL (IS) of each run minus {md(config_label(*first))}'s (the first point; same seed), image by "
            "image on the same test images, averaged over images and seeds; SE is the standard error of that "
            "paired mean."
        ),
        "",
        "| run | difference (nats) | paired SE | beyond 2 SE |",
        "|---|---|---|---|",
    ]
    for d in differences:
        lines.append(f"| {md(d.point)} | {d.difference:+.3f} | {d.stderr:.3f} | {'yes' if d.significant else 'no'} |")
    return "\n".join(lines)


def write_sweep_report(summary: SweepSummary, sweep_dir: Path) -> Path:
    """results.csv, results.md, comparison figures and report.md / report.html / report.pdf of a
    finished sweep, everything read from its saved runs (see sweep_files.read_sweep)."""
    tables = sweep_tables(summary, sweep_dir)
    _write_csv(sweep_dir / "results.csv", csv_rows(summary))
    table_md = markdown_table(tables.header, tables.rows)
    io.write_text(sweep_dir / "results.md", f"# {tables.caption}\n\n{table_md}\n")
    figure_dir = _write_figures(summary, sweep_dir)
    text = sweep_markdown(tables, table_md, sorted(figure_dir.glob("*.png")))
    io.write_text(sweep_dir / "report.md", text)
    io.write_text(sweep_dir / "report.html", to_html(text, sweep_dir, summary.name))
    write_sweep_pdf(sweep_dir, tables)
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
    return figure_dir


def sweep_markdown(tables: SweepTables, table_md: str, figures: list[Path]) -> str:
    """report.md of a sweep; `figures` are the PNGs under its figures/."""
    summary = tables.summary
    parts = [
        f"# Sweep {md(summary.name)}",
        "What varied: "
        + "; ".join(f"{md_code(k)} in {', '.join(map(md, v))}" for k, v in tables.varied.items())
        + f" ({len(summary.points)} runs).",
        f"## Results\n\n{tables.caption}. Sorted by {md_code(summary.headline)}.\n\n{table_md}",
        paired_section(tables.paired, summary.pairs[0]) if summary.points else None,
        "## Observations\n\n" + "\n".join(f"- {n}" for n in tables.notes),
        "## Figures",
    ]
    for path in figures:
        parts.append(f"![{md(path.stem)}](figures/{quote(path.name)})\n\n*{md(path.stem)}*")
    return "\n\n".join(part for part in parts if part is not None) + "\n"


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
