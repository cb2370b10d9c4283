"""One escaping layer per output language: every value that comes from a spec, a run folder or a
sweep folder goes through one of these before it is written into Markdown, HTML, typst or a
matplotlib label.

Such values may come from someone else (a received run or sweep folder), so none of them is ever
markup: each function returns text that shows exactly the value and nothing else. `clean` is what
every layer shows for a value: control characters (a newline in a table cell would end the row)
become spaces, and lone surrogates (JSON allows `\\ud800`, UTF-8 does not) become U+FFFD.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from typing import Any

#: characters that Markdown (Python-Markdown, and CommonMark) reads as syntax anywhere in a line,
#: each written with a backslash; `$` starts vaezoo's math, `<` raw HTML. `&` is written `&amp;`:
#: an escaped `&` before `lt;` would still read as the entity.
MARKDOWN_SPECIAL = "\\`*_{}[]<>#!|$~"
_MARKDOWN = re.compile("([" + re.escape(MARKDOWN_SPECIAL) + "])")
#: characters that start markup in typst text
_TYPST = re.compile(r"([\\*_#$@<>\[\]`~/=+\-\"'])")
#: a value shown as `code` in Markdown only when nothing in it is syntax there or in typst
_PLAIN_CODE = re.compile(r"[A-Za-z0-9 .,:;=+\-/()]*")


def clean(value: Any) -> str:
    """The text every layer shows for `value`: control characters as spaces, lone surrogates as U+FFFD."""
    text = value if isinstance(value, str) else str(value)
    return "".join(_clean_char(c) for c in text) if not text.isprintable() else text


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cs":
        return "\ufffd"
    # a line or paragraph separator would end a line for str.splitlines()
    return " " if category in ("Cc", "Zl", "Zp") else char


def markdown(value: Any) -> str:
    """A value as Markdown inline text (and a table cell): it shows as itself, never as markup."""
    return _MARKDOWN.sub(r"\\\1", clean(value)).replace("&", "&amp;")


def markdown_code(value: Any) -> str:
    """A value as Markdown `code` where that is safe in every renderer, else as escaped text."""
    text = clean(value)
    return f"`{text}`" if text.strip() and _PLAIN_CODE.fullmatch(text) else markdown(text)


def unescape_markdown(text: str) -> str:
    """The inverse of `markdown` (for tests and for reading results.md back)."""
    return re.sub("\\\\([" + re.escape(MARKDOWN_SPECIAL) + "])|&amp;", lambda m: m.group(1) or "&", text)


def html(value: Any) -> str:
    """A value as HTML text or an attribute value."""
    return _html.escape(clean(value), quote=True)


def typst(value: Any) -> str:
    """A value as typst markup that shows exactly that text (never code, never math)."""
    return _TYPST.sub(r"\\\1", clean(value))


def typst_string(value: Any) -> str:
    """A value as a typst string literal."""
    return '"' + clean(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def matplotlib(value: Any) -> str:
    """A value as a matplotlib label: a `$` would start mathtext, and `$a_$` fails to draw."""
    return clean(value).replace("$", r"\$")
