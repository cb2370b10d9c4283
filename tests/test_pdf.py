"""The typeset report: TeX to typst math for every formula of the derivation, markdown to typst
markup, typst errors as one-line OutputErrors, MathML in the HTML."""

import json
import re

import pytest
import typst

from tests.records import run_metrics
from vaezoo import outputs
from vaezoo.core.errors import OutputError
from vaezoo.outputs import pdf, render, sweep_pdf
from vaezoo.outputs.html_page import math_html, to_html
from vaezoo.outputs.sweep_entries import SweepEntry
from vaezoo.outputs.sweep_figures import save_rate_distortion
from vaezoo.outputs.tex_typst import TexError, tex_to_typst
from vaezoo.outputs.typst_markup import escape, markdown_to_typst
from vaezoo.parts.likelihoods import NLLKind

DERIVATION = outputs.DERIVATION.read_text()
FORMULAS = re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", DERIVATION, re.DOTALL)


def typeset_math(typst_math: str, block: bool) -> bytes:
    body = f"$ {typst_math} $" if block else f"${typst_math}$"
    return typst.compile(f"#set page(width: 20cm, height: auto)\n{body}\n".encode(), ignore_system_fonts=True)


def test_the_derivation_has_its_formulas():
    assert len(FORMULAS) > 150 and sum(f.startswith("$$") for f in FORMULAS) > 15


@pytest.mark.parametrize("formula", sorted(set(FORMULAS)), ids=lambda f: f.strip("$").strip()[:40])
def test_every_formula_of_the_derivation_becomes_typst_that_typesets(formula):
    block = formula.startswith("$$")
    assert typeset_math(tex_to_typst(formula.strip("$").strip()), block).startswith(b"%PDF")
    assert "<math" in math_html(formula) and 'class="tex"' not in math_html(formula)


@pytest.mark.parametrize(
    ("tex", "expected"),
    [
        (r"\frac{a}{b}", "frac(a, b)"),
        (r"p_\theta(x\mid z)", "p_(theta) ( x mid(|) z )"),
        (r"x^23", "x^(2) 3"),  # TeX takes one digit for an unbraced script
        (r"N=50{,}000", 'N ="50,000"'),
        (
            r"\mathrm{KL}(q\,\Vert\,p)",
            '"KL"( q thin bar.v.double thin p )',
        ),  # no space after a text: typst would set it
        (r"\sum_{i=1}^{784} x_i", "sum_(i = 1)^(784) x_(i)"),
        (r"\underbrace{a}_{\text{rate}}", 'underbrace(a, "rate")'),
        (r"\left[\tfrac{1}{2}\right]", "[ inline(frac(1, 2)) ]"),
        (r"a/b, c", "a \\/ b \\, c"),  # a typst slash is a fraction and a comma splits arguments
        (r"\phi\epsilon", "phi.alt epsilon.alt"),
    ],
)
def test_tex_to_typst(tex, expected):
    assert tex_to_typst(tex) == expected


@pytest.mark.parametrize(
    ("tex", "message"),
    [(r"\unknowncommand x", r"\\unknowncommand is not"), (r"\frac{a", "unclosed"), ("a}", "unmatched"), ("a^", "ends")],
)
def test_tex_outside_the_subset_is_refused_by_name(tex, message):
    with pytest.raises(TexError, match=message):
        tex_to_typst(tex)


def plain_text(content: dict) -> str:
    """The text of typst content as `typst.query` returns it."""
    if "children" in content:
        return "".join(plain_text(child) for child in content["children"])
    return {"space": " ", "smartquote": '"'}.get(content["func"], content.get("text", ""))


def test_escaped_text_typesets_as_itself(tmp_path):
    text = 'a*b_c #d $e @f <g> [h] `i` ~j //k =l +m -n x\\y "q" 3/4 -ELBO'
    source = tmp_path / "q.typ"
    source.write_text(f"#metadata[{escape(text)}] <t>\n")
    assert plain_text(json.loads(typst.query(str(source), "<t>", field="value", one=True))) == text


def test_markdown_blocks_become_typst_blocks():
    out = markdown_to_typst(
        "# Title\n\n1. Not a list, **bold** and *it* and `co_de`\nwrapped\n\n- one\n- two $x_i$\n\n$$\na\n$$\n"
    )
    assert out.splitlines()[0] == "= Title"
    assert '1\\. Not a list, #strong[bold]; and #emph[it]; and #raw("co_de"); wrapped' in out
    assert "- one\n- two $x_(i)$" in out and "\n$ a $\n" in out


def test_the_appendix_is_the_whole_derivation_and_typesets(tmp_path):
    from vaezoo.outputs.doc_typst import to_typst
    from vaezoo.outputs.document import Document
    from vaezoo.outputs.run_pdf import appendix

    source = to_typst(Document("t", "", "", appendix(), tmp_path))
    body = source.split(pdf.MAIN_END)[1]
    assert body.lstrip().startswith("#pagebreak()") and "= Appendix: The ELBO" in body
    assert body.count("\n$ ") == DERIVATION.count("\n$$\n") // 2  # every displayed formula
    _, pages, main_pages = pdf.typeset(source, tmp_path)
    assert main_pages == 1 and pages >= 3


def test_a_typst_error_is_one_line_and_leaves_no_pdf(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF stale")
    with pytest.raises(OutputError) as error:
        pdf.write_source(target, "= Fine\n\n#nonexistent_function(1)\n")
    assert "\n" not in str(error.value) and "unknown variable: nonexistent_function" in str(error.value)
    assert "report.typ line 3" in str(error.value)
    assert not target.exists() and "#nonexistent_function" in (tmp_path / "report.typ").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.typ"]  # no temporary source left behind


def test_html_math_is_mathml_and_figures_share_a_grid(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{name}.png")
    text = "Inline $p_\\theta(x\\mid z)$ and\n\n$$\n\\log p(x) \\ge \\mathcal{L}(x)\n$$\n\n"
    text += "![a](a.png)\n\n*a*: first\n\n![b](b.png)\n\n*b*: second\n"
    page = to_html(text, tmp_path, "t")
    assert page.count("<math") == 2 and 'display="block"' in page and "$" not in page.split("<body>")[1]
    assert page.count('<div class="figures">') == 1 and page.count("<figure>") == 2 and "@media print" in page
    assert "<figcaption><strong>a</strong>: first</figcaption>" in page


def point(beta: float, rate: float, distortion: float, kind: NLLKind = NLLKind.BINARY_MASS) -> SweepEntry:
    metrics = run_metrics(test_kl=rate, test_recon_nll=distortion, test_neg_elbo=rate + distortion, nll_kind=kind)
    return SweepEntry({"kl.beta": beta}, metrics)


def test_the_sweep_trade_off_reads_its_numbers_and_never_ranks_across_kinds():
    a, b = point(0.5, 30.0, 100.0), point(4.0, 6.0, 146.0)
    text = sweep_pdf.trade_off([a, b], ["kl.beta"], drawn=True)
    assert "rate rises from 6.00 to 30.00 nats while the distortion falls from 146.00 to 100.00 nats" in text
    assert (
        "lowered the distortion by 1.92 nats" in text
        and "130.00" in text
        and "dashed lines of the rate-distortion plane" in text
    )
    mixed = sweep_pdf.trade_off([a, point(4.0, 6.0, 146.0, NLLKind.DENSITY)], ["kl.beta"], drawn=False)
    assert "only their rates compare" in mixed and "best bound" not in mixed and "@fig" not in mixed
    assert typst.compile((pdf.preamble("t") + mixed).encode(), ignore_system_fonts=True).startswith(b"%PDF")


def test_the_rate_distortion_plot_draws_an_iso_elbo_line_through_each_run(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(render, "save_png", lambda fig, path: drawn.append(fig))
    save_rate_distortion([("a", 30.0, 100.0), ("b", 6.0, 146.0)], tmp_path / "rd.png")
    dashed = [line for line in drawn[0].axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    for line, total in zip(dashed, (130.0, 152.0)):
        assert all(abs(r + d - total) < 1e-9 for r, d in zip(*line.get_data()))
