"""One document model for every report: a title block and a list of typed blocks, built once from the
typed records and written by three writers that only format it: typst (report.typ, then report.pdf),
Markdown (report.md) and HTML (report.html, rendered from the same Markdown), so the three hold the
same text, tables, formulas and figures.

Text in a block is Markdown inline text (values from a spec or run folder already escaped with
escape.markdown) with $TeX$ mathematics; the typst writer reads it through typst_markup.inline.

The Discussion block is the student's: the writers put it between DISCUSSION markers, and
`keep_discussion` reads an edited report back so that a rebuilt report keeps it (see discussion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from vaezoo.outputs.escape import markdown as md

Language = Literal["typst", "markdown"]


@dataclass(frozen=True)
class Heading:
    text: str  # Markdown inline
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    text: str  # Markdown inline, $TeX$ allowed


@dataclass(frozen=True)
class Math:
    tex: str  # one displayed formula


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    align: str = "(left, right)"  # typst's column alignment


@dataclass(frozen=True)
class Panel:
    """One image of a figure: a PNG under the document's root, its sub-caption, and the share of the
    text width it is placed at (its drawn width, if smaller: a figure is never enlarged past it)."""

    path: Path  # relative to the document's root
    label: str  # Markdown inline
    width: float = 0.5


@dataclass(frozen=True)
class Figure:
    """A numbered figure: rows of panels, lettered (a), (b), ... in order, and a caption."""

    rows: list[list[Panel]]
    caption: str  # Markdown inline
    label: str  # "fig-..." : the typst label

    @property
    def panels(self) -> list[Panel]:
        return [panel for row in self.rows for panel in row]


@dataclass(frozen=True)
class Discussion:
    """The student's own text, between markers; None shows the placeholder."""

    text: str | None = None
    language: Language = "typst"


@dataclass(frozen=True)
class Prose:
    """A whole Markdown fragment with its own headings (the derivation, resources/elbo.md)."""

    text: str
    heading_offset: int = 0  # its headings go this many levels deeper


@dataclass(frozen=True)
class MainEnd:
    """The end of the main body (at most MAIN_PAGES pages): what follows is the appendix."""


Block = Heading | Paragraph | Math | Bullets | Table | Figure | Discussion | Prose | MainEnd


@dataclass(frozen=True)
class Document:
    """A report: title, byline and abstract (Markdown inline), then its blocks; figures lie under `root`."""

    title: str
    byline: str
    abstract: str
    blocks: list[Block]
    root: Path
    figures: list[Figure] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "figures", [b for b in self.blocks if isinstance(b, Figure)])

    def figure_number(self, label: str) -> int:
        return 1 + [f.label for f in self.figures].index(label)

    def with_discussion(self, discussion: Discussion) -> Document:
        blocks = [discussion if isinstance(b, Discussion) else b for b in self.blocks]
        return Document(self.title, self.byline, self.abstract, blocks, self.root)


#: the markers around the student's discussion, in each language's comment syntax
BEGIN, END = "vaezoo:discussion:begin", "vaezoo:discussion:end"
TYPST_MARKERS = (
    f"// {BEGIN} (your text between these two lines is kept by `vaezoo report`; typst markup)",
    f"// {END}",
)
MARKDOWN_MARKERS = (
    f"<!-- {BEGIN} (your text between these two lines is kept by `vaezoo report`) -->",
    f"<!-- {END} -->",
)
PLACEHOLDER = (
    "Write your discussion here: what the figures show about the trade-off between rate and distortion, "
    "and what you would try next."
)
REBUILD = (
    "To rebuild this report after editing it: write your discussion between the discussion markers of "
    "report.typ (or report.md), then run `vaezoo report FOLDER`, which rewrites everything else from the "
    "saved runs and keeps your text; or compile exactly your edited source with `typst compile report.typ`."
)


def letter(index: int) -> str:
    return f"({chr(97 + index)})"


def to_markdown(doc: Document, markers: bool = True) -> str:
    """report.md; without `markers` (for the HTML page) the discussion markers are left out."""
    parts = [f"# {doc.title}", f"*{doc.byline}*", f"**Abstract.** {doc.abstract}"]
    for block in doc.blocks:
        parts.append(_markdown_block(doc, block, markers))
    return "\n\n".join(part for part in parts if part) + "\n"


def _markdown_block(doc: Document, block: Block, markers: bool) -> str:
    if isinstance(block, Heading):
        return f"{'#' * (block.level + 1)} {block.text}"
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Math):
        return f"$$\n{block.tex}\n$$"
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in block.rows])
    if isinstance(block, Figure):
        panels = [
            f"![{panel.label}]({quote(panel.path.as_posix())})\n\n*{letter(i)}* {panel.label}"
            for i, panel in enumerate(block.panels)
        ]
        return "\n\n".join(panels + [f"**Figure {doc.figure_number(block.label)}.** {block.caption}"])
    if isinstance(block, Prose):
        return re.sub(
            r"(?m)^(#+) ", lambda m: "#" * (len(m.group(1)) + 1 + block.heading_offset) + " ", block.text.strip()
        )
    if isinstance(block, Discussion):
        text = discussion_markdown(block)
        return "\n".join([MARKDOWN_MARKERS[0], text, MARKDOWN_MARKERS[1]]) if markers else text
    return "---"  # MainEnd: the appendix follows


def discussion_markdown(block: Discussion) -> str:
    """The discussion as Markdown: the student's Markdown as written; typst source shown as text."""
    if block.text is None:
        return f"*{PLACEHOLDER}*"
    if block.language == "markdown":
        return block.text
    return "\n\n".join(md(p.strip()) for p in block.text.split("\n\n") if p.strip())


def extract(text: str, markers: tuple[str, str]) -> str | None:
    """The text between a report's discussion markers (None when they are missing)."""
    begin = text.find(markers[0])
    end = text.find(markers[1], begin + len(markers[0])) if begin >= 0 else -1
    if begin < 0 or end < 0:
        return None
    return text[begin + len(markers[0]) : end].strip("\n")
