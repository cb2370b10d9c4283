"""The typst writer of the document model (document.py): report.typ, which pdf.typeset makes report.pdf.

Figures are placed at the width they were drawn (render.save_png draws them at print size and records
their smallest font), never wider than their share of the text width; `printed_fonts` says how large
each figure's smallest text prints, so a report and its tests can check that none is below 7 pt.
"""

from __future__ import annotations

from pathlib import Path

from vaezoo.outputs import pdf, render
from vaezoo.outputs.document import (
    PLACEHOLDER,
    TYPST_MARKERS,
    Block,
    Bullets,
    Discussion,
    Document,
    Figure,
    Heading,
    Math,
    Panel,
    Paragraph,
    Prose,
    Table,
    letter,
)
from vaezoo.outputs.tex_typst import tex_to_typst
from vaezoo.outputs.typst_markup import escape, inline, markdown_to_typst, paragraph, string

GUTTER_IN = 0.12  # between the panels of a row


def to_typst(doc: Document) -> str:
    """report.typ of a document."""
    parts = [pdf.preamble(_plain(doc.title)), pdf.header(inline(doc.title), inline(doc.byline), inline(doc.abstract))]
    parts += [_block(doc, block) for block in doc.blocks]
    return "\n\n".join(part for part in parts if part) + "\n"


def _plain(title: str) -> str:
    from vaezoo.outputs.escape import unescape_markdown

    return unescape_markdown(title)


def _block(doc: Document, block: Block) -> str:
    if isinstance(block, Heading):
        return "=" * block.level + " " + inline(block.text)
    if isinstance(block, Paragraph):
        return paragraph(block.text)
    if isinstance(block, Math):
        return f"$ {tex_to_typst(block.tex)} $"
    if isinstance(block, Bullets):
        return pdf.bullets(block.items)
    if isinstance(block, Table):
        return "#block(breakable: false)[\n" + pdf.table(block.rows, block.header, align=block.align) + "\n]"
    if isinstance(block, Figure):
        return figure(doc, block)
    if isinstance(block, Discussion):
        return "\n".join([TYPST_MARKERS[0], discussion_typst(block), TYPST_MARKERS[1]])
    if isinstance(block, Prose):
        return markdown_to_typst(block.text, block.heading_offset)
    return pdf.MAIN_END + "\n\n#pagebreak()\n#set heading(numbering: none)"  # MainEnd: the appendix follows


def placeholder_typst() -> str:
    return f"#text(fill: luma(80))[_{escape(PLACEHOLDER)}_]"


def discussion_typst(block: Discussion) -> str:
    """The discussion as typst: the student's typst as written, Markdown converted, else the placeholder."""
    if block.text is None:
        return placeholder_typst()
    return block.text if block.language == "typst" else markdown_to_typst(block.text).strip()


def placed_width(root: Path, panel: Panel) -> float:
    """The width (inches) a panel is placed at: its drawn width, at most its share of the text width
    (never enlarged: a figure drawn for half the page stays the size its fonts were chosen for)."""
    share = panel.width * render.TEXT_WIDTH_IN
    info = render.png_print_info(root / panel.path)
    return min(share, info[0]) if info else share


def printed_fonts(doc: Document) -> dict[Path, float | None]:
    """Each figure panel's smallest text as printed (points), None where the PNG does not record it."""
    return {
        panel.path: render.printed_font(doc.root / panel.path, placed_width(doc.root, panel))
        for fig in doc.figures
        for panel in fig.panels
        if (doc.root / panel.path).exists()
    }


def figure(doc: Document, block: Figure) -> str:
    """One numbered figure: each row of panels a grid of images at their placed widths, each lettered."""
    grids, index = [], 0
    for row in block.rows:
        cells = []
        for panel in row:
            if not (doc.root / panel.path).exists():
                continue
            source = string("/" + panel.path.as_posix())
            width = placed_width(doc.root, panel)
            label = f"#text(7.5pt)[{letter(index)} {inline(panel.label)}]"
            cells.append(f"[#image({source}, width: {width:.3f}in)\n{label}]")
            index += 1
        if cells:
            grids.append(
                f"grid(columns: {len(cells)}, column-gutter: {GUTTER_IN}in, align: center + bottom, {', '.join(cells)})"
            )
    if not grids:
        return ""
    body = f"stack(spacing: 0.5em, {', '.join(f'align(center, {g})' for g in grids)})"
    return f"#figure(placement: auto, {body},\n  caption: [{inline(block.caption)}],\n) <{block.label}>"
