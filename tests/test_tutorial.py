"""The tutorial's machinery (.ci/tutorial.py): a MyST notebook executed in a real Jupyter kernel keeps
vaezoo's progress bar, epoch lines, final table and the Run's HTML in its outputs; and the tutorial still
holds the cells a student needs (the loss written by hand and checked, a custom encoder)."""

import importlib.util
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
jupytext = pytest.importorskip("jupytext")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def ci_tutorial():
    spec = importlib.util.spec_from_file_location("ci_tutorial", REPO / ".ci" / "tutorial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a real Jupyter kernel starts (the tutorial step of .ci/run runs one too)
def test_a_notebook_run_in_a_kernel_keeps_progress_and_the_final_table(synthetic_root, tmp_path):
    tutorial = ci_tutorial()
    text = textwrap.dedent(
        f"""\
        ---
        kernelspec: {{display_name: Python 3, language: python, name: python3}}
        jupytext: {{text_representation: {{extension: .md, format_name: myst}}}}
        ---

        ```{{code-cell}} ipython3
        import os
        os.environ["OMP_NUM_THREADS"] = "1"
        from pathlib import Path
        import vaezoo
        from tests import synthetic
        from tests.conftest import tiny_spec
        synthetic.register(Path({str(synthetic_root)!r}))
        spec, OUT = tiny_spec(Path({str(synthetic_root)!r}), name="mlp"), {str(tmp_path / "runs")!r}
        ```

        ```{{code-cell}} ipython3
        run = vaezoo.run(spec, out=OUT)
        ```

        ```{{code-cell}} ipython3
        run
        ```
        """
    )
    notebook = jupytext.reads(text, fmt="md:myst")
    assert tutorial.execute(notebook, REPO, timeout=300) is None
    assert tutorial.missing_outputs(notebook) == []
    # and the checks can fail: a notebook run quietly shows none of it
    notebook.cells[1].source = "run = vaezoo.run(spec, out=OUT, progress=False)\nrun = vaezoo.run(spec, out=OUT)"
    for cell in notebook.cells:
        cell.outputs = []
    assert len(tutorial.missing_outputs(notebook)) == len(tutorial.EXPECTED)


def test_the_tutorial_keeps_the_loss_exercise_and_a_custom_encoder():
    notebook = jupytext.read(REPO / "docs" / "tutorial.md")
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "def my_negative_elbo(model, x, eps)" in code and "torch.testing.assert_close(mine, theirs" in code
    assert '@ENCODERS.register("gated")' in code and 'model__encoder={"kind": "gated"' in code
    assert ".train_more(" in code
