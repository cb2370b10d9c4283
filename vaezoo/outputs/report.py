"""A run's report: report.md (GitHub markdown), a self-contained report.html (images embedded, the
mathematics as MathML) and report.pdf (typeset with typst: see run_pdf).

Everything comes from the run's saved spec, metrics, history and figure files, so a report can be
rewritten without the model; a figure whose file is absent is left out. The tables and notes are
computed by run_tables; this module and run_pdf only format them (every cell there is Markdown,
its values already escaped, which html_page and run_pdf read back).
"""

from __future__ import annotations

from pathlib import Path

from vaezoo.core import io
from vaezoo.evaluate.records import HistoryRow, RunMetrics
from vaezoo.outputs import DERIVATION
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.figures import FIGURES
from vaezoo.outputs.html_page import to_html
from vaezoo.outputs.run_pdf import write_run_pdf
from vaezoo.outputs.run_tables import RunTables, run_tables
from vaezoo.spec.experiment import ExperimentSpec


def table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    """A Markdown table of Markdown cells (values in them already escaped, so a | never splits a cell)."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def run_markdown(report: RunTables) -> str:
    """report.md of one run."""
    spec, metrics = report.spec, report.metrics
    parts = [
        f"# {md(spec.name)}",
        (
            f"A {md(spec.model.encoder.kind)}/{md(spec.model.decoder.kind)} VAE with a {md(spec.model.likelihood.kind)} "
            f"likelihood and {spec.model.latent_dim} latent dimensions, trained {metrics.epochs} epochs on "
            f"{md(spec.data.dataset)}. "
            "Every number is per image, in nats, summed over pixels and latent dimensions."
        ),
        "## Spec",
        table(report.spec_rows, ("part", "setting")),
        "## Metrics (test set)",
        table(report.metric_rows, ("metric", "value")),
        "## Observations",
        "\n".join(f"- {note}" for note in report.notes),
        "## Figures",
    ]
    for name in report.figures:
        kind = FIGURES.get(name)
        parts.append(f"![{name}](figures/{kind.file_name})\n\n*{name}*: {kind.caption}")
    if DERIVATION.exists():
        parts += ["---", DERIVATION.read_text().replace("\n# ", "\n## ", 1)]
    return "\n\n".join(parts) + "\n"


def write_run_report(run_dir: Path, spec: ExperimentSpec, metrics: RunMetrics, history: list[HistoryRow]) -> Path:
    """Write run_dir/report.md, report.html and report.pdf (with its source, report.typ) from the
    run's saved metrics, history and figures."""
    report = run_tables(run_dir, spec, metrics, history)
    text = run_markdown(report)
    io.write_text(run_dir / "report.md", text)
    io.write_text(run_dir / "report.html", to_html(text, run_dir, spec.name))
    write_run_pdf(run_dir, report)
    return run_dir / "report.md"
