"""Hostile names and values in every field a report reads (a received metrics.json, sweep.json, spec):
the HTML runs no script and loads nothing, Markdown tables keep their columns, the typst source
typesets and shows each value as text, never as code, and each value shows exactly as itself."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest
import typst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.records import history_row, run_metrics
from vaezoo.core.errors import OutputError
from vaezoo.evaluate.records import RunMetrics, finished_metrics
from vaezoo.outputs import escape, report, run_pdf, sweep_report
from vaezoo.outputs.html_page import to_html
from vaezoo.outputs.run_tables import tables_for
from vaezoo.outputs.sweep_entries import SweepEntry
from vaezoo.outputs.sweep_observations import sweep_observations
from vaezoo.outputs.sweep_tables import sweep_rows
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.spec.experiment import validate

#: what an attacker would try first, in every language vaezoo writes
KNOWN = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "a|b|c",
    "``x``",
    "`",
    "$a_$",
    "$$\\frac{1}{0}$$",
    '#read("/etc/passwd")',
    '#image("/etc/passwd")',
    "#",
    "\\",
    "line\nbreak\n\n# heading\n| x |",
    "[x](javascript:alert(1))",
    "![x](../../../../etc/passwd.png)",
    "&lt;script&gt;",
    "MATHSPAN0END",
    "**b** *i* _u_",
    "\ud800 lone surrogate",
    "nul \x00 and \u2028 separator",
    "#{while true {}}",
    "@fig-panels",
    "<!-- comment",
    "\\$a\\$",
]
META = "<>&\"'|`$#\\*_[]()!{}~@=+-/\n\r\t :;.%"
HOSTILE = st.one_of(st.sampled_from(KNOWN), st.text(alphabet=st.sampled_from(META) | st.characters(), max_size=30))
#: every free-text field of metrics.json that a report shows (nll_kind is an NLLKind: see below)
STRING_FIELDS = ("split", "device", "kl_estimate", "binarize")
#: the tags a report's HTML may hold (markdown's, the figure grid's, MathML's)
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "ul",
    "ol",
    "li",
    "code",
    "pre",
    "strong",
    "em",
    "hr",
    "div",
    "figure",
    "img",
    "figcaption",
    "a",
    "br",
    "math",
    "mi",
    "mn",
    "mo",
    "ms",
    "mrow",
    "msub",
    "msup",
    "msubsup",
    "mfrac",
    "msqrt",
    "mtext",
    "mspace",
    "mover",
    "munder",
    "munderover",
    "mstyle",
    "mtable",
    "mtr",
    "mtd",
    "semantics",
    "annotation",
}


def metrics_with(values: list[str]) -> RunMetrics:
    """Metrics whose free-text fields hold `values`, the last one a phase's name."""
    return run_metrics(phase_seconds={values[-1]: 1.0}, **dict(zip(STRING_FIELDS, values, strict=False)))


HISTORY = [history_row(1, val_neg_elbo=101.0, train_loss=99.0), history_row(2, val_neg_elbo=100.0, train_loss=98.0)]
SPEC = validate({"name": "x"}, "t")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert_html(page: str) -> str:
    """No tag outside the report's own, no event handler, no URL but an inlined PNG or a web link;
    the page's text, whitespace collapsed."""
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        assert not any(name.startswith("on") for name in attrs), attrs
        assert attrs.get("src", "data:image/png;base64,").startswith("data:image/png;base64,"), attrs
        assert re.match(r"(https?://|#|$)", attrs.get("href", "")), attrs
    return " ".join("".join(parser.text).split())


def shown(value: str) -> str:
    """What a reader must see of `value`: escape.clean's text, whitespace collapsed (as HTML shows it)."""
    return " ".join(escape.clean(value).split())


def cells_per_row(text: str) -> list[int]:
    """Cells of each Markdown table row, split where a | is not escaped (an odd run of backslashes)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) - 1 for row in rows]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HOSTILE, min_size=len(STRING_FIELDS) + 1, max_size=len(STRING_FIELDS) + 1))
def test_a_run_report_shows_hostile_metrics_as_text(values):
    metrics = metrics_with(values)
    text = report.run_markdown(tables_for(SPEC, metrics, HISTORY, []))
    tables = text.split("## Observations")[0]
    assert set(cells_per_row(tables)) == {2}  # every row of the spec and metrics tables keeps its 2 columns
    page_text = assert_inert_html(to_html(text, Path("/nonexistent"), SPEC.name))
    for value in values[: len(STRING_FIELDS) - 1]:  # binarize is not in a run's tables
        assert shown(value) in page_text, value
    source = run_pdf.run_source(Path("/nonexistent"), tables_for(SPEC, metrics, HISTORY, []))
    for value in (metrics.split, metrics.device):
        assert escape.typst(value) in source
    assert "#read" not in source.replace("\\#read", "")


@settings(max_examples=150, deadline=None)
@given(HOSTILE)
def test_each_layer_shows_a_value_exactly_as_itself(value):
    rendered = markdown.markdown(f"| a | b |\n|---|---|\n| {escape.markdown(value)} | x |", extensions=["tables"])
    assert rendered.count("<td>") == 2
    assert escape.unescape_markdown(escape.markdown(value)) == escape.clean(value)
    assert "\n" not in escape.markdown(value) and "\n" not in escape.typst(value)
    page_text = assert_inert_html(to_html(f"before {escape.markdown(value)} after", Path("/nonexistent"), value))
    assert f"before {shown(value)} after".replace("  ", " ") in page_text


def typst_text(markup: str, tmp_path: Path) -> str:
    source = tmp_path / "q.typ"
    source.write_text(f"#metadata[{markup}] <t>\n", encoding="utf-8")
    content = json.loads(typst.query(str(source), "<t>", field="value", one=True))
    return _plain(content)


def _plain(content: dict) -> str:
    if "children" in content:
        return "".join(_plain(child) for child in content["children"])
    if content["func"] == "smartquote":
        return '"' if content.get("double", True) else "'"
    return {"space": " ", "linebreak": "\n"}.get(content["func"], content.get("text", ""))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=HOSTILE)
def test_typst_shows_a_value_exactly_as_itself(value, tmp_path):
    expected = " ".join(escape.clean(value).split(" "))
    got = typst_text(escape.typst(value), tmp_path)
    # typst collapses runs of spaces into one, and drops them at the ends of the content
    assert " ".join(got.split()) == " ".join(expected.split())


@pytest.mark.parametrize("value", KNOWN)
def test_a_whole_run_report_with_hostile_metrics_typesets(value, tmp_path):
    metrics = metrics_with([value] * (len(STRING_FIELDS) + 1))
    source = run_pdf.run_source(tmp_path, tables_for(SPEC, metrics, HISTORY, []))
    (tmp_path / "report.typ").write_text(source, encoding="utf-8")
    pdf = typst.compile(str(tmp_path / "report.typ"), root=str(tmp_path), ignore_system_fonts=True)
    assert pdf[:5] == b"%PDF-"  # compiled: no value read a file, ran a loop or broke the markup


@settings(max_examples=100, deadline=None)
@given(st.lists(HOSTILE, min_size=2, max_size=4, unique=True), HOSTILE, HOSTILE, st.sampled_from(list(NLLKind)))
def test_a_sweep_table_keeps_its_columns_and_shows_hostile_values(names, key, estimate, kind):
    entries = [
        SweepEntry({"run": name, key: name}, run_metrics(nll_kind=kind, kl_estimate=estimate, test_nll_iw=90.0 + i))
        for i, name in enumerate(names)
    ]
    header, _ = sweep_rows(entries, [key], "test_nll_iw")
    table = sweep_report.sweep_table(entries, [key], "test_nll_iw")
    assert set(cells_per_row(table)) == {len(header)}
    page_text = assert_inert_html(to_html(table, Path("/nonexistent"), "t"))
    for name in names:
        assert shown(name) in page_text
    notes = sweep_observations(entries, [key], "test_nll_iw")
    assert_inert_html(to_html("\n".join(f"- {n}" for n in notes), Path("/nonexistent"), "t"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=HOSTILE)
def test_a_metrics_json_whose_nll_kind_is_no_kind_is_refused_naming_it(value, tmp_path):
    """What the NLL is decides which numbers compare: a value that names no NLLKind is a damaged file."""
    (tmp_path / "metrics.json").write_text(json.dumps(run_metrics().to_json() | {"nll_kind": value}))
    if value in {kind.value for kind in NLLKind}:
        assert finished_metrics(tmp_path).nll_kind == NLLKind(value)
    else:
        with pytest.raises(OutputError, match="metrics.json is damaged or from another version: nll_kind"):
            finished_metrics(tmp_path)
