"""Markdown to one self-contained HTML page: images inlined as data URIs, TeX as MathML (which
browsers render natively, offline), figures in a grid that prints several to a page.

The Markdown may hold values from a received run or sweep folder (escaped by escape.markdown), so
the renderer trusts none of it: raw HTML is shown as text, links go only to http(s) or an anchor,
and an image is inlined only from a regular PNG file inside the report's folder (never through a link).
"""

from __future__ import annotations

import base64
import html
import re
import uuid
from pathlib import Path
from urllib.parse import unquote

import markdown
from latex2mathml.converter import convert as tex_to_mathml

from vaezoo.core import io
from vaezoo.core.errors import VaezooError
from vaezoo.outputs.escape import MARKDOWN_SPECIAL

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f2f2f2; } td { text-align: right; } td:first-child { text-align: left; }
code { background: #f4f4f4; padding: 0 0.2rem; }
math { font-family: 'Latin Modern Math', 'STIX Two Math', 'Cambria Math', 'DejaVu Math TeX Gyre', math; font-size: 1.05em; }
math[display="block"] { display: block math; margin: 0.7rem 0; overflow-x: auto; overflow-y: hidden; }
.tex { font-family: monospace; color: #a00; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(24rem, 1fr)); gap: 1rem 1.2rem; align-items: start; margin: 1rem 0; }
figure { margin: 0; break-inside: avoid; }
figure img { display: block; width: 100%; height: auto; max-height: 44rem; object-fit: contain; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.85rem; margin-top: 0.3rem; }
@media print {
  @page { size: A4; margin: 12mm 12mm 14mm; }
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; line-height: 1.35; }
  h1 { font-size: 16pt; margin: 0 0 0.4rem; } h2 { font-size: 12pt; } h3 { font-size: 10.5pt; }
  h1, h2, h3 { break-after: avoid; }
  table { font-size: 8.5pt; margin: 0.4rem 0; } td, th { padding: 0.1rem 0.4rem; }
  table, figure, math[display="block"] { break-inside: avoid; }
  .figures { grid-template-columns: repeat(2, 1fr); gap: 0.4rem 0.6rem; }
  figure img { max-height: 12cm; }
  figcaption { font-size: 7.5pt; }
}
"""

_FUNCTION = re.compile(r"<mi>(?:log|ln|exp|det|sin|cos|tan)</mi>")
_THIN = '<mspace width="0.1667em"></mspace>'

#: $$...$$ or $...$, neither dollar escaped (escape.markdown writes a value's $ as \$)
_MATH = re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$|(?<!\\)\$[^$\n]+?(?<!\\)\$", re.DOTALL)
#: the largest PNG inlined into a page
MAX_IMAGE_BYTES = 64 * 2**20
#: markdown's rendering of an image paragraph followed by its caption paragraph (*name*: caption)
_FIGURE = re.compile(
    r'<p><img alt="(?P<alt>[^"]*)" src="(?P<src>[^"]+)" ?/?></p>\s*<p><em>(?P<name>[^<]*)</em>(?P<caption>.*?)</p>',
    re.DOTALL,
)


def to_html(text: str, base: Path, title: str) -> str:
    """Markdown to one self-contained HTML page: images inlined as data URIs, TeX as MathML."""
    spans: list[str] = []
    # a placeholder no text can hold by chance: a value that spelled out another would pick its formula
    mark = f"MATHSPAN{uuid.uuid4().hex}N"

    # markdown would read the TeX's underscores and asterisks as emphasis: set it aside, put it back after
    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"{mark}{len(spans) - 1}END"

    body = _renderer().convert(_MATH.sub(keep, text))
    body = _figures(body)
    body = re.sub(mark + r"(\d+)END", lambda m: math_html(spans[int(m.group(1))]), body)
    body = re.sub(r'\b(src|href)="([^"]*)"', lambda m: _url(m, base), body)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def math_html(span: str) -> str:
    """$...$ or $$...$$ as MathML; TeX that latex2mathml cannot read is shown as TeX, marked."""
    display = span.startswith("$$")
    tex = span.strip("$").strip()
    try:
        mathml = tex_to_mathml(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 (latex2mathml raises several types; the TeX is shown instead)
        return f'<code class="tex">{html.escape(span)}</code>'
    mathml = mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1)  # HTML needs none: no URL
    # latex2mathml sets \log as a plain identifier: TeX's thin spaces around it, after an operand before
    # it and before an operand after it (not before a "(")
    return _FUNCTION.sub(lambda m: _spaced(m, mathml), mathml)


def _spaced(match: re.Match[str], mathml: str) -> str:
    before = re.search(r"</(?:mi|mn|msub|msup|msubsup)>$", mathml[: match.start()]) is not None
    after = not mathml.startswith('<mo stretchy="false">&#x00028;', match.end())
    return (_THIN if before else "") + match.group(0) + (_THIN if after else "")


def _figures(body: str) -> str:
    """Each image with its caption as a <figure>, and each run of figures as one grid."""
    body = _FIGURE.sub(
        lambda m: (
            f'<figure><img alt="{m["alt"]}" src="{m["src"]}">'
            f"<figcaption><strong>{m['name']}</strong>{m['caption']}</figcaption></figure>"
        ),
        body,
    )
    return re.sub(r"(<figure>.*?</figure>)(\s*<figure>.*?</figure>)*", _grid, body, flags=re.DOTALL)


def _grid(match: re.Match[str]) -> str:
    return f'<div class="figures">\n{match.group(0)}\n</div>'


def _renderer() -> markdown.Markdown:
    """Python-Markdown that shows raw HTML as text and reads a backslash before any of escape's
    characters as that character."""
    renderer = markdown.Markdown(extensions=["tables", "fenced_code", "toc"])
    renderer.preprocessors.deregister("html_block")
    renderer.inlinePatterns.deregister("html")
    renderer.ESCAPED_CHARS = sorted(set(renderer.ESCAPED_CHARS) | set(MARKDOWN_SPECIAL))
    return renderer


def _url(match: re.Match[str], base: Path) -> str:
    """An attribute's URL as the page may hold it: a PNG under `base` inlined, a web or anchor link
    kept; anything else (javascript:, a file elsewhere) emptied."""
    attribute, url = match.group(1), html.unescape(match.group(2))
    if attribute == "href":
        safe = re.match(r"(https?://|#)", url, re.IGNORECASE) is not None
        return f'href="{html.escape(url) if safe else "#"}"'
    return f'src="{_data_uri(base, url)}"'


def _data_uri(base: Path, url: str) -> str:
    """The PNG at the relative `url` under `base` as a data URI; "" for anything else."""
    relative = Path(unquote(url))
    if relative.suffix.lower() != ".png" or relative.is_absolute() or ".." in relative.parts or ":" in url:
        return ""
    try:
        data = io.read_bytes(base / relative, MAX_IMAGE_BYTES, follow_links=False)
    except VaezooError:
        return ""  # a linked, special or missing figure is left out, never followed
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
