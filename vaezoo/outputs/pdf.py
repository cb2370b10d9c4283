"""report.pdf: typst source typeset with typst's Python binding, offline, with typst's built-in fonts.

A report is a main body of at most MAIN_PAGES A4 pages, then an appendix with the full derivation
(resources/elbo.md). `write_pdf` typesets the source a builder gives for ever smaller figure
layouts until the main body fits, then writes report.typ (the source, to edit by hand) and
report.pdf, each atomically. A typst error becomes one OutputError line and leaves no report.pdf.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.outputs import DERIVATION
from vaezoo.outputs.tex_typst import tex_to_typst
from vaezoo.outputs.typst_markup import escape, inline, markdown_to_typst, string

T = TypeVar("T")
MAIN_PAGES = 2
#: the figure's layouts, largest first, tried in turn until the main body fits: (how many rows its
#: squarish panels are split into, the figure's share of the text width)
LAYOUTS = ((2, 0.85), (1, 1.0), (1, 0.85), (1, 0.7), (1, 0.55), (1, 0.4))
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
    """What was written: the PDF's page count, how many of them are the main body, the figure layout."""

    path: Path
    pages: int
    main_pages: int
    layout: tuple[int, float]


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


def figure(rows: Sequence[Sequence[tuple[Path, str]]], root: Path, caption: str, label: str, scale: float) -> str:
    """One numbered figure of image panels (a PNG under `root`, a sub-caption), lettered (a), (b), ...
    in rows; the panels of a row share one height and together fill `scale` of the text width."""
    rows = [[(path, name) for path, name in row if path.exists()] for row in rows]
    grids, letter = [], 0
    for row in filter(None, rows):
        aspects = [aspect(path) for path, _ in row]
        cells = []
        for path, name in row:
            source = string("/" + path.relative_to(root).as_posix())
            cells.append(f"[#image({source}, width: 100%)\n#text(7.5pt)[({chr(97 + letter)}) {escape(name)}]]")
            letter += 1
        columns = ", ".join(f"{a:.3f}fr" for a in aspects)
        grid = f"grid(columns: ({columns},), column-gutter: 0.8em, align: center + bottom, {', '.join(cells)})"
        # a panel alone would fill the width and tower over the others: it gets three quarters of it
        grids.append(grid if len(row) > 1 else f"align(center, block(width: 75%, {grid}))")
    if not grids:
        return ""
    body = f"block(width: {round(100 * scale)}%, stack(spacing: 0.7em, {', '.join(grids)}))"
    return f"#figure(placement: auto, {body},\n  caption: [{caption}],\n) <{label}>"


def panel_rows(wide: Sequence[T], squarish: Sequence[T], tall_rows: int) -> list[list[T]]:
    """Figure rows: the wide panels in one, the squarish ones in one, or split into `tall_rows` rows
    when there are more than three of them."""
    per_row = max(1, -(-len(squarish) // tall_rows) if len(squarish) > 3 else len(squarish))
    return [list(wide)] + [list(squarish[i : i + per_row]) for i in range(0, len(squarish), per_row)]


def aspect(png: Path) -> float:
    """Width over height of a PNG, from its header (1 for a file that is not a PNG)."""
    with png.open("rb") as handle:
        header = handle.read(24)
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    return width / height if header[12:16] == b"IHDR" and height else 1.0


def appendix() -> str:
    """The full derivation, resources/elbo.md, as an appendix on its own pages."""
    if not DERIVATION.exists():
        return ""
    text = re.sub(r"\A# ", "# Appendix: ", DERIVATION.read_text(), count=1)
    return "#pagebreak()\n#set heading(numbering: none)\n" + markdown_to_typst(text)


def write_pdf(path: Path, build: Callable[[int, float], str]) -> PdfPages:
    """Typeset build(*layout) for the layouts in LAYOUTS until the main body fits MAIN_PAGES pages
    (the last layout otherwise); write its source beside `path` as .typ and the PDF as `path`.

    On a typst error the source is still written (the error names its line) and `path` is removed:
    a report.pdf that no longer matches the run is worse than none."""
    source = ""
    try:
        for layout in LAYOUTS:
            source = build(*layout)
            pdf, pages, main_pages = typeset(source, path.parent)
            if main_pages <= MAIN_PAGES:
                break
    except OutputError:
        path.unlink(missing_ok=True)
        if source:
            io.write_text(path.with_suffix(".typ"), source)
        raise
    io.write_text(path.with_suffix(".typ"), source)
    io.atomic_write(path, lambda handle: handle.write(pdf))
    return PdfPages(path, pages, main_pages, layout)


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
    return PdfPages(path, pages, main_pages, (1, 1.0))


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
