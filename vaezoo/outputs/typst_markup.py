"""Markdown (the subset the derivation and the reports use) to typst markup.

Blocks: `#` headings, paragraphs, `- ` lists, `$$...$$` display math and `---` rules. Inline:
`$...$` math (through tex_typst), `**bold**`, `*italic*` and `` `code` ``; every other character
is text, escaped where typst would read it as markup.
"""

from __future__ import annotations

import re

from vaezoo.outputs.escape import MARKDOWN_SPECIAL
from vaezoo.outputs.escape import typst as escape
from vaezoo.outputs.escape import typst_string as string
from vaezoo.outputs.tex_typst import tex_to_typst

__all__ = ["escape", "inline", "markdown_to_typst", "paragraph", "string"]

#: a Markdown backslash escape (escape.markdown writes them) is the character itself, as text; a code
#: span may be fenced by several backticks (a value holding one)
_INLINE = re.compile(
    "\\\\(?P<escaped>[" + re.escape(MARKDOWN_SPECIAL) + "])|(?P<amp>&amp;)"
    r"|\$\$(?P<display>.+?)\$\$|\$(?P<math>[^$\n]+?)\$|(?P<fence>`+)(?P<code>[^\n]+?)(?P=fence)(?!`)"
    r"|\*\*(?P<bold>.+?)\*\*|(?<![\w*])\*(?P<italic>[^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])",
    re.DOTALL,
)


def inline(text: str) -> str:
    """One paragraph's markdown as typst markup (newlines kept as spaces)."""
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[last : match.start()]))
        last = match.end()
        kind = next(name for name in ("escaped", "amp", "display", "math", "code", "bold", "italic") if match[name])
        value = match.group(kind)
        if kind in ("escaped", "amp"):
            out.append(escape(value if kind == "escaped" else "&"))
        elif kind == "display":
            out.append(f"\n$ {tex_to_typst(value.strip())} $\n")
        elif kind == "math":
            out.append(f"${tex_to_typst(value.strip())}$")
        elif kind == "code":
            out.append(f"#raw({string(value.strip() if value.strip() else value)});")
        elif kind == "bold":
            out.append(f"#strong[{inline(value)}];")
        else:
            out.append(f"#emph[{inline(value)}];")
    out.append(escape(text[last:]))
    return "".join(out).replace("\n\n", "\n")


def paragraph(text: str) -> str:
    """Inline markdown that starts a block: a leading "1." would otherwise begin a numbered list."""
    return re.sub(r"^(\d+)\.", r"\1\\.", inline(text))


def markdown_to_typst(text: str, heading_offset: int = 0) -> str:
    """A markdown document as typst markup; headings go `heading_offset` levels deeper."""
    blocks: list[str] = []
    for block in _blocks(text):
        first = block.splitlines()[0]
        heading = re.match(r"(#{1,6})\s+(.*)", first)
        if heading and "\n" not in block:
            level = len(heading.group(1)) + heading_offset
            blocks.append("=" * level + " " + inline(heading.group(2).strip()))
        elif re.fullmatch(r"-{3,}|\*{3,}", block.strip()):
            blocks.append("#line(length: 100%, stroke: 0.5pt + gray)")
        elif re.match(r"[-*] ", first):
            items = re.split(r"\n(?=[-*] )", block)
            blocks.append("\n".join("- " + paragraph(_unwrap(item[2:])) for item in items))
        elif block.startswith("$$") and block.endswith("$$") and block.count("$$") == 2:
            blocks.append(f"$ {tex_to_typst(block[2:-2].strip())} $")
        else:
            blocks.append(paragraph(_unwrap(block)))
    return "\n\n".join(blocks) + "\n"


def _unwrap(text: str) -> str:
    """A block's lines as one line (markdown's soft line breaks are spaces)."""
    return " ".join(line.strip() for line in text.splitlines())


def _blocks(text: str) -> list[str]:
    """Blank-line separated blocks; a display formula's lines stay one block, blank lines and all."""
    blocks, current, in_math = [], [], False
    for line in text.splitlines():
        if line.strip() == "$$":
            in_math = not in_math
        if not line.strip() and not in_math:
            if current:
                blocks.append("\n".join(current))
            current = []
            continue
        current.append(line.rstrip())
        if re.match(r"#{1,6}\s", line) and not in_math:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks
