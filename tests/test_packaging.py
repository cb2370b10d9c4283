"""The wheel is complete: it ships the derivation every report includes and the example specs, and
a run made from the installed wheel (not this checkout) writes a report that holds the derivation."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import tiny_spec

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a wheel is built and installed (real processes, about 20 s)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)], check=True, capture_output=True)
    return next(out.glob("vaezoo-*.whl"))


def test_the_wheel_holds_the_derivation_and_every_example_spec(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "vaezoo/resources/elbo.md" in names
    specs = {p.name for p in (REPO / "experiments").glob("*.yaml")}
    assert specs and {f"vaezoo/resources/experiments/{name}" for name in specs} <= names


def test_a_run_from_the_installed_wheel_reports_the_derivation(wheel, tmp_path, synthetic_root):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps", "--no-compile"]
    subprocess.run([*pip, "--target", str(site), str(wheel)], check=True, capture_output=True)
    spec = tiny_spec(synthetic_root, name="from-wheel")
    script = f"""
import sys
sys.path[:0] = [{str(site)!r}, {str(REPO)!r}]  # the installed copy first; the checkout only for tests.synthetic
import vaezoo
assert vaezoo.__file__.startswith({str(site)!r}), vaezoo.__file__
from pathlib import Path
from tests import synthetic
synthetic.register(Path({str(synthetic_root)!r}))
vaezoo.run({spec!r}, out={str(tmp_path / "runs")!r}, train__epochs=1, eval__iw_samples=2)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (tmp_path / "runs" / "from-wheel" / "report.md").read_text()
    assert "Jensen" in report and "reparameterization" in report.lower()


def test_the_wheel_holds_exactly_the_checkouts_modules(wheel):
    """No module left over from an older layout (a stale build/ folder) rides along into the wheel."""
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    source = {str(path.relative_to(REPO)) for path in (REPO / "vaezoo").rglob("*.py")}
    assert shipped == source


def test_the_installed_wheel_runs_a_shipped_spec_by_name(wheel, tmp_path, synthetic_root):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps", "--no-compile"]
    subprocess.run([*pip, "--target", str(site), str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"  # no experiments/ here: the name must come from the wheel
    work.mkdir()
    changes = {
        "data.dataset": "synthetic",
        "data.root": str(synthetic_root),
        "data.val_size": 40,
        "train.epochs": 1,
        "train.device": "cpu",
        "eval.iw_samples": 2,
    }
    argv = ["run", "quickstart", "--quiet", *(f"--set={key}={value}" for key, value in changes.items())]
    script = f"""
import sys
sys.path[:0] = [{str(site)!r}, {str(REPO)!r}]  # the installed copy first; the checkout only for tests.synthetic
from vaezoo.cli.main import main
from vaezoo.spec.shipped import spec_path
assert str(spec_path("quickstart")).startswith({str(site)!r}), spec_path("quickstart")
sys.exit(main({argv!r}))
"""
    env = {**os.environ, "VAEZOO_PLUGINS": "tests.synthetic_plugin", "VAEZOO_SYNTHETIC_ROOT": str(synthetic_root)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work, capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    saved = (work / "runs" / "quickstart" / "spec.yaml").read_text()
    assert "warmup_steps: 1000" in saved and (work / "runs" / "quickstart" / "metrics.json").is_file()
