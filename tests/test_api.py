"""The Python API a notebook uses: vaezoo.run / vaezoo.load return a Run with typed records and
methods that draw from the model; the CLI's drawing commands write PNGs."""

import subprocess
import sys

import pytest
import torch
import yaml
from matplotlib.figure import Figure
from PIL import Image

import vaezoo
from tests.conftest import tiny_spec
from vaezoo.cli.main import main
from vaezoo.evaluate.records import HistoryRow, RunMetrics
from vaezoo.runs import runner
from vaezoo.spec.experiment import SLOTS


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root):
    out = tmp_path_factory.mktemp("api")
    spec = tiny_spec(synthetic_root, model__latent_dim=2)
    return out, spec, vaezoo.run(spec, out=out, train__epochs=1)


def test_run_returns_a_typed_run_and_a_rerun_reuses_it(trained, monkeypatch):
    out, spec, run = trained
    assert isinstance(run, vaezoo.Run) and isinstance(run.metrics, RunMetrics)
    assert run.spec.train.epochs == 1 and run.metrics.epochs == 1  # the keyword override reached the spec
    assert all(isinstance(row, HistoryRow) for row in run.history) and len(run.history) == 1
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = vaezoo.run(spec, out=str(out), train__epochs=1)
    assert again.metrics == run.metrics
    assert vaezoo.load(out / spec["name"]).metrics == run.metrics


def test_run_accepts_a_str_path(tmp_path, synthetic_root):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(synthetic_root, name="from-file")))
    run = vaezoo.run(str(path), out=str(tmp_path / "runs"), train__epochs=1, eval__iw_samples=2)
    assert run.path == tmp_path / "runs" / "from-file" and run.metrics.iw_samples == 2


def test_model_methods_draw_images(trained):
    _, _, run = trained
    x = run.data.test_images[:4]
    mu, logvar = run.encode(x)
    assert mu.shape == logvar.shape == (4, 2)
    recon = run.reconstruct(x)
    assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
    assert torch.equal(run.sample(5, seed=3), run.sample(5, seed=3)) and run.sample(5).shape == (5, 1, 28, 28)
    line = run.interpolate(x[0], x[1], steps=6)
    assert line.shape == (6, 1, 28, 28)
    torch.testing.assert_close(line[[0, -1]], recon[:2])  # the ends are the two images' reconstructions


def test_every_applicable_figure_is_a_matplotlib_figure(trained):
    _, _, run = trained
    kinds = run.figure_kinds()
    assert "manifold" in kinds  # latent_dim 2
    for kind in kinds:
        assert isinstance(run.figure(kind), Figure)


def test_the_package_lists_its_api_and_imports_nothing_heavy():
    assert {"run", "load", "Run", "ExperimentSpec", "load_spec", "list_components"} <= set(dir(vaezoo))
    assert set(vaezoo.__all__) - {"__version__"} == set(vaezoo._API)
    assert vaezoo.list_components() == {slot.path: slot.registry.names() for slot in SLOTS}
    code = "import sys, vaezoo; print(sorted(m for m in ('torch', 'matplotlib', 'torchvision') if m in sys.modules))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["sample", "-n", "10", "--seed", "4"], "samples.png"),
        (["interpolate", "--a", "0", "--b", "3", "--steps", "7"], "interpolation.png"),
        (["traverse", "--image", "2", "--dims", "2"], "traversal.png"),
    ],
)
def test_drawing_commands_write_pngs(trained, tmp_path, command, name, capsys):
    out, spec, _ = trained
    target = tmp_path / name
    assert main([command[0], str(out / spec["name"]), *command[1:], "--out", str(target)]) == 0
    assert Image.open(target).format == "PNG" and f"wrote {target}" in capsys.readouterr().out


def test_drawing_commands_refuse_bad_input_in_one_line(trained, capsys):
    out, spec, _ = trained
    assert main(["interpolate", str(out / spec["name"]), "--a", "100000"]) == 2
    assert capsys.readouterr().err.strip().endswith("is out of range 0..59")
    assert main(["sample", str(out / spec["name"]), "-n", "0"]) == 2


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"vaezoo {vaezoo.__version__}"


def test_a_figure_shows_inline_in_a_notebook(trained):
    """IPython's inline backend draws nothing for a figure without axes: the Figure must have one."""
    _, _, run = trained
    fig = run.figure("samples")
    assert fig.axes and fig.axes[0].get_images()


def test_api_errors_name_keywords_not_command_line_options(tmp_path, synthetic_root):
    from vaezoo.core.errors import OutputError
    from vaezoo.runs.lock import mark_folder

    (tmp_path / "tiny").mkdir()
    mark_folder(tmp_path / "tiny", "sweep")
    with pytest.raises(OutputError, match="another name or out=") as error:
        vaezoo.run(tiny_spec(synthetic_root), out=tmp_path, progress=False)
    assert "--" not in str(error.value)
    (tmp_path / "half").mkdir()
    mark_folder(tmp_path / "half", "run")
    with pytest.raises(OutputError, match=r"has not finished \(run it, or resume it with vaezoo.run\)") as error:
        vaezoo.load(tmp_path / "half")
    assert "--" not in str(error.value)
