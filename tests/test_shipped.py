"""Shipped specs run by name (`vaezoo run quickstart`, `vaezoo.run("quickstart")`); a path that exists wins."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import vaezoo
from tests.conftest import tiny_spec
from vaezoo.cli.main import main
from vaezoo.core.errors import SpecError
from vaezoo.spec.experiment import load_spec
from vaezoo.spec.shipped import experiments_dir, shipped_names, spec_path

REPO = Path(__file__).resolve().parents[1]


def test_every_spec_of_experiments_is_shipped_and_loads_by_name():
    names = sorted(path.stem for path in (REPO / "experiments").glob("*.yaml"))
    assert names and shipped_names() == names
    for name in ("quickstart", "quickstart.yaml", "mnist-mlp"):
        assert spec_path(name).parent == experiments_dir()
    assert load_spec(spec_path("quickstart")).name == "quickstart"


def test_a_path_that_exists_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("name: mine\n")
    assert spec_path("quickstart") == Path("quickstart")
    assert load_spec(spec_path("quickstart")).name == "mine"
    assert spec_path("sub/quickstart") == Path("sub/quickstart")  # a path with folders is never a name


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"spec file not found: quickstrat \(nor a shipped spec .*quickstart"):
        spec_path("quickstrat")
    assert main(["run", "quickstrat"]) == 2
    assert "quickstart" in capsys.readouterr().err


def test_the_python_api_runs_a_shipped_spec_by_name(tmp_path, monkeypatch, synthetic_root):
    monkeypatch.chdir(tmp_path)
    data = tiny_spec(synthetic_root)["data"]
    run = vaezoo.run(
        "quickstart",
        out=tmp_path / "runs",
        progress=False,
        data=data,
        train__epochs=1,
        train__device="cpu",
        eval__iw_samples=2,
    )
    assert run.path == tmp_path / "runs" / "quickstart" and run.spec.kl.warmup_steps == 1000
    assert yaml.safe_load((run.path / "spec.yaml").read_text())["model"]["encoder"]["hidden"] == [400]


def test_a_sweep_is_named_like_a_spec_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert spec_path("ablation-beta") == experiments_dir() / "ablation-beta.yaml"
    assert main(["sweep", "no-such-sweep"]) == 2
    assert "ablation-beta" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("quickstart", "an MLP VAE with"),
        ("paper-iwae", "IWAE with"),
        ("mnist-miwae", "MIWAE with"),
        ("mnist-tcvae", "β-TCVAE with"),
        ("mnist-infovae", "InfoVAE with"),
        ("mnist-dip", "DIP-VAE with"),
        ("mnist-wae", "WAE with"),
        ("mnist-cvae", "an MLP conditional VAE with"),
        ("mnist-gumbel", "Gumbel-softmax VAE with"),
        ("mnist-vqvae", "VQ-VAE with"),
        ("mnist-m2", "M2 semi-supervised VAE with"),
    ],
)
def test_a_report_title_names_the_family_the_spec_trains(name, family):
    """The title says what was trained: the posterior's family where it makes one (VQ-VAE), else the
    objective's, else a conditional VAE, a beta-VAE or a VAE; and the protocol names what was minimized."""
    from vaezoo.outputs.run_pdf import model_name, protocol, title

    spec = load_spec(spec_path(name))
    assert family in model_name(spec) and title(spec).lower().startswith(model_name(spec).lower())
    split = SimpleNamespace(split="50000/10000/10000 train/val/test")
    minimized = {
        "quickstart": "on the ELBO with",
        "paper-iwae": "on the IWAE bound with",
        "mnist-m2": "on the M2 objective",
    }
    if name in minimized:
        assert minimized[name] in protocol(spec, split)[0].text
