"""Markdown to one self-contained HTML page: the images inlined as data URIs, TeX kept readable."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f2f2f2; } td { text-align: right; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; } figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.9rem; }
.math { font-family: 'DejaVu Serif', serif; background: #f7f7fb; padding: 0 0.2rem; }
div.math { display: block; padding: 0.5rem; margin: 0.6rem 0; overflow-x: auto; white-space: pre-wrap; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""

_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.DOTALL)


def to_html(text: str, base: Path, title: str) -> str:
    """Markdown to one self-contained HTML page: images inlined as data URIs, TeX kept readable."""
    spans: list[str] = []

    # markdown would read the TeX's underscores and asterisks as emphasis: set it aside, put it back after
    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"MATHSPAN{len(spans) - 1}END"

    body = markdown.markdown(_MATH.sub(keep, text), extensions=["tables", "fenced_code"])
    body = re.sub(r"MATHSPAN(\d+)END", lambda m: _math_html(spans[int(m.group(1))]), body)
    body = re.sub(r'src="([^"]+\.png)"', lambda m: f'src="{_data_uri(base / m.group(1))}"', body)
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _math_html(span: str) -> str:
    display = span.startswith("$$")
    tex = html.escape(span.strip("$").strip())
    return f'<div class="math">{tex}</div>' if display else f'<span class="math">{tex}</span>'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
