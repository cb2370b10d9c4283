"""A trained run's figures and report: every figure referenced, observations computed, HTML self-contained."""

import json
import re

import pytest

from tests.conftest import tiny_spec
from tests.records import history_row, run_metrics
from vaezoo.cli.main import main
from vaezoo.outputs import pdf, run_tables
from vaezoo.outputs.figures import FIGURES
from vaezoo.outputs.typst_markup import inline
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.runs import runner
from vaezoo.spec.experiment import validate


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root):
    out = tmp_path_factory.mktemp("runs")
    spec = validate(tiny_spec(synthetic_root, model__latent_dim=2), "test")
    metrics = runner.run(spec, out)
    return out / spec.name, spec, metrics


def test_run_writes_figures_and_report(trained):
    run_dir, _, metrics = trained
    # latent 2: the manifold too; every kind but those of conditional models (class_samples)
    unconditional = set(FIGURES.names()) - {"class_samples"}
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == unconditional
    text = (run_dir / "report.md").read_text()
    for name in unconditional:
        assert f"figures/{name}.png" in text
    assert f"{metrics.test_nll_iw:.2f}" in text and f"K = {metrics.iw_samples}" in text
    assert f"{metrics.active_units} of 2" in text
    assert "| reconstruction -log p(x\\|z) (nats/image) |" in text  # a pipe inside a cell is escaped
    assert "Jensen" in text  # docs/elbo.md is included


def test_html_is_self_contained(trained):
    run_dir, _, _ = trained
    page = (run_dir / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    drawn = list((run_dir / "figures").glob("*.png"))  # every figure, in the main body or the appendix
    assert len(sources) == len(drawn) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page.split("<body>")[0]
    assert "<math" in page and 'display="block"' in page and "<table>" in page
    assert "$$" not in page and "\\mathcal" not in page  # every formula is MathML, none left as TeX
    assert '<div class="figures">' in page and "@media print" in page


def test_the_pdf_has_a_two_page_main_body_with_the_numbers_then_the_appendix(trained):
    run_dir, _, metrics = trained
    source = (run_dir / "report.typ").read_text()
    written, pages, main_pages = pdf.typeset(source, run_dir)
    assert (run_dir / "report.pdf").read_bytes()[:5] == b"%PDF-" and pdf.count_pages(written) == pages
    assert main_pages <= pdf.MAIN_PAGES < pages  # the appendix follows on pages of its own
    assert pdf.count_pages((run_dir / "report.pdf").read_bytes()) == pages
    headline = f"#strong[{metrics.test_nll_iw:.2f} ± {metrics.test_nll_iw_stderr:.2f} nats]"
    assert headline in source and inline(f"K = {metrics.iw_samples}") in source
    assert f"#strong[{metrics.test_neg_elbo:.2f} nats]" in source and f"#strong[{metrics.test_kl:.2f} nats]" in source
    body = source.split(pdf.MAIN_END)[0]
    assert body.count("#figure(") == 1 and "<fig-panels>" in body and "Figure 1" in body
    assert body.count("#image(") == 5  # reconstructions, samples, scatter, manifold, training curves
    assert "curves.png" in body
    order = [
        "= Model and protocol",
        "= The evidence lower bound",
        "= Rate and distortion",
        "= Results",
        "= Observations",
        "= Discussion",
    ]
    assert [body.index(h) for h in order] == sorted(body.index(h) for h in order)
    assert "= Appendix: The ELBO" in source.split(pdf.MAIN_END)[1]


def test_a_run_without_figures_still_gets_a_report_that_leaves_them_out(tmp_path, synthetic_root):
    spec = validate(tiny_spec(synthetic_root, train__epochs=1), "test")
    runner.run(spec, tmp_path, figures=False)
    run_dir = tmp_path / spec.name
    assert not (run_dir / "figures").exists()
    assert "figures/" not in (run_dir / "report.md").read_text()
    assert "<img" not in (run_dir / "report.html").read_text()
    source = (run_dir / "report.typ").read_text()
    assert "#figure(" not in source and "#image(" not in source and "figures were not drawn" in source
    assert pdf.count_pages((run_dir / "report.pdf").read_bytes()) > pdf.MAIN_PAGES


def test_report_and_eval_commands_rebuild_from_the_saved_run(trained, capsys):
    run_dir, _, metrics = trained
    (run_dir / "report.md").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.md").exists()
    assert main(["eval", str(run_dir), "--iw-samples", "16"]) == 0
    updated = json.loads((run_dir / "metrics.json").read_text())
    assert updated["iw_samples"] == 16 and updated["train_seconds"] == metrics.train_seconds
    assert "K = 16" in (run_dir / "report.md").read_text()
    assert "test NLL (IS, K = 16)" in capsys.readouterr().out


def test_commands_on_an_unfinished_run_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert main(["report", str(tmp_path / "half")]) == 2
    assert "has not finished" in capsys.readouterr().err
    assert main(["figures", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_observations_follow_the_numbers():
    metrics = run_metrics(nll_kind=NLLKind.BERNOULLI_ON_GREY)
    history = [history_row(1, val_neg_elbo=101.0, train_loss=99.0), history_row(2, val_neg_elbo=100.0, train_loss=98.0)]
    text = "\n".join(run_tables.observations(metrics, history, validate({"name": "x"}, "t")))
    assert "4.50 nats looser" in text and "2 of 4 latent dimensions are active" in text
    assert "z1 (5.00 nats), z3 (3.00 nats)" in text and "2 dimensions carry under 0.01 nats" in text
    assert (
        "at most 2.00 nats are the mismatch" in text
        and "ceiling" not in text
        and "still improving" in text
        and "not log-likelihoods" in text
    )
    ladder = validate({"name": "x", "model": {"prior": {"kind": "ladder"}, "posterior": {"kind": "ladder"}}}, "t")
    text = "\n".join(run_tables.observations(metrics, history, ladder))
    assert "the code is the top layer" in text and "is the mismatch" not in text and "covers every layer" in text
