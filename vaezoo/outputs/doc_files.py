"""A document's files: report.md, report.html, report.typ and report.pdf, all from one Document, with
the student's discussion kept from the report already in the folder (report.typ first, then report.md).

The folder may be someone else's: an old report is read without following a link, and a discussion
from report.md is Markdown that the HTML writer shows safely; from report.typ it is typst, which typst
typesets inside the folder only (it reads no file outside the folder's root).
"""

from __future__ import annotations

from pathlib import Path

from vaezoo.core import io
from vaezoo.core.errors import VaezooError
from vaezoo.outputs import pdf
from vaezoo.outputs.doc_typst import placeholder_typst, to_typst
from vaezoo.outputs.document import (
    MARKDOWN_MARKERS,
    PLACEHOLDER,
    TYPST_MARKERS,
    Discussion,
    Document,
    extract,
    to_markdown,
)
from vaezoo.outputs.escape import unescape_markdown
from vaezoo.outputs.html_page import to_html

#: the largest old report read back for its discussion
MAX_REPORT_BYTES = 8 * 2**20


def kept_discussion(folder: Path) -> Discussion:
    """The discussion a student wrote into the folder's report.typ (else report.md); empty otherwise."""
    sources = (
        ("report.typ", TYPST_MARKERS, "typst", placeholder_typst()),
        ("report.md", MARKDOWN_MARKERS, "markdown", f"*{PLACEHOLDER}*"),
    )
    for name, markers, language, placeholder in sources:
        path = folder / name
        if not path.exists():
            continue
        try:
            text = io.read_bytes(path, MAX_REPORT_BYTES, follow_links=False).decode("utf-8", errors="replace")
        except VaezooError:
            continue  # a linked or special file is never read: the report is rebuilt without it
        found = extract(text, markers)
        if found is not None and found.strip() and found.strip() != placeholder:
            return Discussion(found.strip("\n"), language)  # type: ignore[arg-type]
    return Discussion()


def write_document(folder: Path, doc: Document) -> pdf.PdfPages:
    """report.md, report.html, report.typ and report.pdf of `doc` in `folder`, keeping a discussion."""
    doc = doc.with_discussion(kept_discussion(folder))
    io.write_text(folder / "report.md", to_markdown(doc))
    io.write_text(
        folder / "report.html", to_html(to_markdown(doc, markers=False), folder, unescape_markdown(doc.title))
    )
    return pdf.write_source(folder / "report.pdf", to_typst(doc))
