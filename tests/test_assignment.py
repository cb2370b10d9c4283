"""The assignment's hand-in: one sweep, one report of at most two main-body pages whose figures print no
text below 7 pt, with a discussion that `vaezoo report` keeps; HTML and typst from the same document."""

import re
import zlib

import pytest
import yaml

from tests.conftest import tiny_spec
from vaezoo.cli.main import main
from vaezoo.outputs import pdf, render
from vaezoo.outputs.doc_files import kept_discussion
from vaezoo.outputs.doc_typst import printed_fonts
from vaezoo.outputs.document import MARKDOWN_MARKERS, TYPST_MARKERS, Figure, Paragraph, extract
from vaezoo.outputs.typst_markup import inline
from vaezoo.sweeps import executors
from vaezoo.sweeps.grid import load_sweep

VARIANTS = [
    {"name": "latent2", "set": {"model.latent_dim": 2}},
    {"name": "beta-0.5", "set": {"kl.beta": 0.5}},
    {"name": "beta-1", "set": {"kl.beta": 1.0}},
    {"name": "beta-4", "set": {"kl.beta": 4.0}},
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, synthetic_root):
    folder = tmp_path_factory.mktemp("assignment")
    base = tiny_spec(synthetic_root, model__latent_dim=8, train__epochs=2)
    base["kl"] = {"kind": "constant", "beta": 1.0}
    path = folder / "assignment.yaml"
    path.write_text(yaml.safe_dump({"name": "assignment", "report": "assignment", "base": base, "variants": VARIANTS}))
    executors.run_sweep(*load_sweep(path), folder / "runs")
    return folder / "runs" / "assignment"


def test_one_report_of_at_most_two_main_pages_then_the_appendix(bundle):
    source = (bundle / "report.typ").read_text()
    _, pages, main_pages = pdf.typeset(source, bundle)
    assert main_pages <= pdf.MAIN_PAGES < pages
    body = source.split(pdf.MAIN_END)[0]
    for heading in ("The evidence lower bound", "A 20-dimensional VAE", "A 2-dimensional latent space", "β trade-off"):
        assert inline(heading) in body
    # the 20-d model's images, the 2-d latent space, the beta plane and the curves, all in the main body
    for figure in ("reconstructions.png", "samples.png", "latent_scatter.png", "manifold.png"):
        assert figure in body
    assert "beta_rate_distortion.png" in body and "beta_curves.png" in body
    assert "Appendix" in source.split(pdf.MAIN_END)[1]


def test_no_figure_text_prints_below_7pt(bundle):
    from vaezoo.outputs.assignment import assignment_document
    from vaezoo.outputs.sweep_files import read_sweep
    from vaezoo.outputs.sweep_tables import sweep_tables

    doc = assignment_document(bundle, sweep_tables(read_sweep(bundle), bundle))
    main = doc.blocks[: next(i for i, b in enumerate(doc.blocks) if type(b).__name__ == "MainEnd")]
    main_paths = {p.path for b in main if isinstance(b, Figure) for p in b.panels}
    fonts = printed_fonts(doc)
    assert main_paths and main_paths <= set(fonts)
    for path in main_paths:
        assert fonts[path] is not None and fonts[path] >= render.MIN_FONT_PT, (path, fonts[path])


def test_the_discussion_survives_vaezoo_report(bundle, capsys):
    typ = bundle / "report.typ"
    source = typ.read_text()
    mine = "My *own* words: beta = 4 blurs the digits.\n\nA second paragraph."
    start, end = source.index(TYPST_MARKERS[0]) + len(TYPST_MARKERS[0]), source.index(TYPST_MARKERS[1])
    typ.write_text(source[:start] + "\n" + mine + "\n" + source[end:])
    main(["report", str(bundle)])
    rebuilt = typ.read_text()
    assert extract(rebuilt, TYPST_MARKERS).strip() == mine
    assert "My \\*own\\* words" in extract((bundle / "report.md").read_text(), MARKDOWN_MARKERS)
    assert "My *own* words" in (bundle / "report.html").read_text()
    assert kept_discussion(bundle).text == mine


def test_html_and_typst_hold_the_same_text(bundle):
    from vaezoo.outputs.assignment import assignment_document
    from vaezoo.outputs.sweep_files import read_sweep
    from vaezoo.outputs.sweep_tables import sweep_tables

    doc = assignment_document(bundle, sweep_tables(read_sweep(bundle), bundle))
    html = re.sub(r"<[^>]+>", "", (bundle / "report.html").read_text())
    typst = (bundle / "report.typ").read_text()
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            numbers = re.findall(r"\d+\.\d\d", block.text)
            for number in numbers:
                assert number in html and number in typst
    assert html.count("Figure ") >= len(doc.figures)
    assert typst.count("#figure(") == len(doc.figures)


def typeset_font_sizes(pdf_bytes: bytes) -> set[float]:
    """Every font size the PDF's content streams set (`SIZE Tf`): typst sets text with a unit text matrix,
    so these are the printed sizes, mathematics' sub- and superscripts included."""
    sizes = set()
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf_bytes, re.DOTALL):
        try:
            content = zlib.decompress(match.group(1))
        except zlib.error:
            continue  # an image or a font, not a content stream
        sizes.update(float(size) for size in re.findall(rb"([\d.]+) Tf", content))
    return sizes


def test_no_typeset_text_prints_below_7pt(bundle):
    """The derivation's second-level scripts (E_{q_phi}, a sum's limit n_z) printed at 5 pt; the notation now
    keeps every script at one level, and the whole PDF, appendix included, is at least 7 pt."""
    sizes = typeset_font_sizes((bundle / "report.pdf").read_bytes())
    assert sizes and min(sizes) >= 7.0, sorted(sizes)
