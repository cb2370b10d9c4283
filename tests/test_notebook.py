"""What a notebook and a log see of a run: progress and the final table (in Jupyter as outputs redrawn in
place), a Run's HTML (its numbers with what they are, its figures, every value escaped), and consoles on a
pipe that never wrap or cut a line."""

import dataclasses
import io
import os
import shutil
import subprocess
import sys

import pytest
from rich.console import Console

import vaezoo
from tests.conftest import tiny_spec
from vaezoo.parts import LIKELIHOODS
from vaezoo.runs import runner
from vaezoo.runs.run_html import PNG_SIGNATURE, run_html
from vaezoo.spec.experiment import SLOTS, validate


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_root):
    out = tmp_path_factory.mktemp("notebook")
    return vaezoo.run(tiny_spec(synthetic_root, train__epochs=1), out=out, progress=False)


def test_a_runs_html_holds_its_numbers_with_what_they_are_and_its_figures(run):
    page = run._repr_html_()
    m = run.metrics
    assert "vaezoo run tiny" in page and f"{m.test_nll_iw:,.2f} ± {m.test_nll_iw_stderr:,.2f}" in page
    assert "test NLL, importance-weighted" in page and "nats/image" in page and "per image, in nats" in page
    assert f"K = {m.iw_samples}" in page and f"test set ({m.split})" in page and str(m.nll_kind) in page
    assert page.count('src="data:image/png;base64,') == 2  # samples and reconstructions, inline
    assert "test classification error" not in page and "code perplexity" not in page  # None: not shown


def test_a_runs_html_and_repr_say_what_a_labelled_nll_is_and_show_the_families_numbers(run):
    """An M2 run shows its test error; a VQ-VAE's NLL is its bound at the codes, not an IS estimate; the
    plain repr is one line with the headline number, K and the split."""
    m = dataclasses.replace(
        run.metrics, test_class_error=0.2802, code_perplexity=62.3, nll_note="an upper bound at the codes"
    )
    page = run_html("tiny", run.path, m)
    assert "test classification error of q(y|x)" in page and "28.02 %" in page and ">62.3<" in page
    assert "the NLL is an upper bound at the codes" in page and "importance-weighted with K" not in page
    assert "the NLL of p(x), importance-weighted with K" in run._repr_html_()
    text = repr(run)
    assert "\n" not in text and text.startswith("Run('tiny', path=") and f"K = {run.metrics.iw_samples}" in text
    assert f"{run.metrics.test_nll_iw:.2f}" in text and run.metrics.split in text and "HistoryRow" not in text


def test_a_hostile_run_folder_is_escaped_and_a_linked_figure_is_not_read(run, tmp_path):
    folder = tmp_path / "<script>alert(1)</script>"
    shutil.copytree(run.path, folder)
    samples = folder / "figures" / "samples.png"
    samples.unlink()
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_SIGNATURE + b"private")
    samples.symlink_to(secret)
    (folder / "figures" / "reconstructions.png").write_bytes(b"<img src=x onerror=alert(1)>")
    metrics = dataclasses.replace(run.metrics, split='<b>1/2/3</b> "&', device="<i>cpu</i>")
    page = run_html("<name>", folder, metrics)
    for raw in ("<script>", "<b>", "<i>", "<name>", "onerror=alert(1)>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;1/2/3&lt;/b&gt; &quot;&amp;" in page
    assert "data:image/png" not in page and page.count("not shown inline") == 2


def test_run_shows_progress_and_the_final_table_outside_jupyter(synthetic_root, tmp_path, capsys):
    vaezoo.run(tiny_spec(synthetic_root), out=tmp_path, eval__iw_samples=3)
    err = capsys.readouterr().err
    assert "epoch   1  loss" in err and "epoch   2  loss" in err and "test ELBO:" in err
    assert "tiny: test set" in err and "IS with K = 3" in err and "test NLL (IS)" in err
    vaezoo.run(tiny_spec(synthetic_root), out=tmp_path, eval__iw_samples=3)  # reused: the table again
    err = capsys.readouterr().err
    assert "epoch" not in err and "tiny: test set" in err


@pytest.fixture
def ipython():
    """An IPython shell without a kernel: its display prints each output and each update as text."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def test_in_jupyter_progress_is_drawn_in_place_and_epoch_lines_and_phases_follow(
    synthetic_root, tmp_path, capfd, ipython
):
    console = Console(force_jupyter=True, width=120)
    metrics = runner.run(validate(tiny_spec(synthetic_root), "t"), tmp_path, console=console, figures=False)
    out = capfd.readouterr().out
    assert "epoch 2/2" in out and "━" in out and "loss" in out  # the training bar, in its last state
    assert "epoch   1  loss" in out and "epoch   2  loss" in out
    assert "test ELBO:" in out and "importance sampling, K = 8 (images):" in out
    assert metrics.epochs == 2


def test_a_console_on_a_pipe_neither_wraps_nor_cuts(tmp_path):
    """`vaezoo list | grep discretized_logistic` finds it at any $COLUMNS; formulas keep their brackets."""
    env = {**os.environ, "COLUMNS": "40"}
    result = subprocess.run(
        [sys.executable, "-m", "vaezoo", "list"], capture_output=True, text=True, env=env, check=True, cwd=tmp_path
    )
    lines = result.stdout.splitlines()
    for slot in SLOTS:
        for name in slot.registry.names():
            assert any(f" {name} " in line and slot.path in line for line in lines), name
    assert "…" not in result.stdout
    likelihood = LIKELIHOODS.get("discretized_logistic").__doc__
    assert "[" in likelihood and any("discretized_logistic" in line and "[sigma(" in line for line in lines)


def test_make_console_is_unwrapped_on_a_file():
    from vaezoo.evaluate.console import make_console

    stdout = sys.stdout
    sys.stdout = io.StringIO()
    try:
        console = make_console()
        console.print("x" * 500 + " [brackets] stay")
        text = sys.stdout.getvalue()
    finally:
        sys.stdout = stdout
    assert text.count("\n") == 1 and "x" * 500 in text and "[brackets] stay" not in text  # markup is the caller's
