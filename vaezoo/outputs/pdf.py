"""report.pdf: typst source typeset with typst's Python binding, offline, with typst's built-in fonts.

A report is a main body of at most MAIN_PAGES A4 pages, then an appendix with the full derivation
(resources/elbo.md). `write_source` typesets a document's source and writes report.typ (the source, to
edit by hand) and report.pdf, each atomically; `typeset` says how many pages the main body takes. A typst
error becomes one OutputError line and leaves no report.pdf.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.outputs.tex_typst import tex_to_typst
from vaezoo.outputs.typst_markup import inline, string

MAIN_PAGES = 2
#: a metadata element at the end of the main body, whose value is the page it lands on
MAIN_END = "#context [#metadata(here().page()) <main-end>]"

PREAMBLE = """#set document(title: {title}, author: "vaezoo", date: none)
#set page(paper: "a4", margin: (x: 1.6cm, top: 1.4cm, bottom: 1.5cm), numbering: "1")
#set text(size: 9.5pt, lang: "en")
#set par(justify: true, leading: 0.5em, spacing: 0.75em)
#set heading(numbering: "1.")
#show heading: set text(size: 10.5pt)
#show heading: set block(above: 0.95em, below: 0.55em)
#show math.equation: set text(size: 10pt)  // first-level scripts at 7 pt (typst sets them at 70 %)
#show math.equation.where(block: true): set block(above: 0.6em, below: 0.6em)
#show figure.caption: set text(size: 8pt)
#set figure(gap: 0.5em)
#set table(stroke: (x, y) => if y == 0 {{ (bottom: 0.5pt) }}, inset: (x: 4pt, y: 1.8pt))
#show table: set text(size: 8pt, hyphenate: false)
#show table: set par(justify: false)
#show table.cell.where(y: 0): set text(hyphenate: true)
#set list(spacing: 0.5em)
"""


@dataclass(frozen=True)
class PdfPages:
    """What was written: the PDF's page count, and how many of them are the main body."""

    path: Path
    pages: int
    main_pages: int


def preamble(title: str) -> str:
    return PREAMBLE.format(title=string(title))


def header(title: str, byline: str, abstract: str) -> str:
    """The title block: title, a line of what this is, and the abstract (all typst markup)."""
    return (
        f'#align(center, text(14pt, weight: "bold")[{title}])\n'
        f"#v(-0.3em)\n#align(center, text(9pt, fill: luma(90))[{byline}])\n"
        f"#block(inset: (x: 1.2em), below: 0.9em)[#set text(size: 9pt)\n*Abstract.* {abstract}]\n"
    )


def math(tex: str, block: bool = False) -> str:
    """TeX as typst math, inline or displayed."""
    return f"$ {tex_to_typst(tex)} $" if block else f"${tex_to_typst(tex)}$"


def table(rows: Sequence[Sequence[str]], header: Sequence[str], align: str = "(left, right)") -> str:
    """A typst table of markdown cells (escaped, `code` and $math$ kept), the first row a header."""
    cells = [f"[*{inline(h)}*]" for h in header]
    for row in rows:
        cells += [f"[{inline(c)}]" for c in row]
    return f"#table(columns: {len(header)}, align: {align},\n  " + ", ".join(cells) + ",\n)"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def bullets(notes: Sequence[str]) -> str:
    return "\n".join("- " + inline(note) for note in notes)


def write_source(path: Path, source: str) -> PdfPages:
    """Typeset `source` once; write it beside `path` as .typ and the PDF as `path` (on a typst error,
    the source only, and `path` removed)."""
    try:
        written, pages, main_pages = typeset(source, path.parent)
    except OutputError:
        path.unlink(missing_ok=True)
        io.write_text(path.with_suffix(".typ"), source)
        raise
    io.write_text(path.with_suffix(".typ"), source)
    io.atomic_write(path, lambda handle: handle.write(written))
    return PdfPages(path, pages, main_pages)


def typeset(source: str, root: Path) -> tuple[bytes, int, int]:
    """The PDF of a typst source whose files (images) lie under `root`, its page count and the page
    of <main-end>; OutputError with typst's message and the source line on a typst error."""
    import typst

    temp = root / f".report.typ.{uuid.uuid4().hex[:12]}.tmp"
    io.write_text(temp, source)  # a full disk is an OutputError here, and leaves no partial file
    try:
        compiler = typst.Compiler(str(temp), root=str(root), ignore_system_fonts=True)
        pdf = compiler.compile(format="pdf")
        ends = json.loads(compiler.query("<main-end>", field="value", format="json"))
    except RuntimeError as error:  # typst.TypstError, or a RuntimeError for a missing file
        where = re.search(r"┌─ \S+?:(\d+):\d+", getattr(error, "diagnostic", "") or "")
        at = f" (report.typ line {where.group(1)})" if where else ""
        message = (str(getattr(error, "message", "")) or str(error) or type(error).__name__).strip().splitlines()
        raise OutputError(f"typst could not typeset {root / 'report.pdf'}: {message[0]}{at}") from None
    finally:
        temp.unlink(missing_ok=True)
    if not isinstance(pdf, bytes):
        raise OutputError(f"typst returned no PDF for {root / 'report.pdf'}")
    pages = count_pages(pdf)
    return pdf, pages, int(ends[0]) if ends else pages


def count_pages(pdf: bytes) -> int:
    """The number of pages of a PDF, without a PDF library: its /Type /Page objects."""
    return len(re.findall(rb"/Type\s*/Page\b", pdf))
