"""Sweeps: expansion of grid, variants and seeds; skip, resume and results; the exit-2 path."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import tiny_spec
from vaezoo.cli.main import main
from vaezoo.core.errors import OutputError, SpecError
from vaezoo.outputs import pdf
from vaezoo.runs import runner
from vaezoo.sweeps import executors
from vaezoo.sweeps.grid import load_sweep, point_names
from vaezoo.train.progress import ProgressView

BASE = {"name": "base", "model": {"latent_dim": 4}}


def test_names_use_short_keys_unless_ambiguous():
    assert point_names([{"kl.beta": 0.5}, {"kl.beta": 2}]) == ["beta=0.5", "beta=2"]
    both = point_names([{"model.encoder.kind": "mlp", "model.decoder.kind": "conv"}])
    assert both == ["model.encoder.kind=mlp_model.decoder.kind=conv"]
    assert point_names([{"variant": "fast", "seed": 1}]) == ["fast_seed=1"]
    assert point_names([{"x.name": "a/b"}, {"x.name": "a b"}]) == ["000_name=a-b", "001_name=a-b"]


def test_a_bad_point_fails_the_whole_sweep_naming_point_and_path(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": BASE, "grid": {"model.latent_dim": [2, 0]}}))
    with pytest.raises(SpecError, match=r"point latent_dim=0: model.latent_dim: Input should be greater"):
        load_sweep(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert "point latent_dim=0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"kl.beta": []}}, "grid: Value error, grid key kl.beta has no values"),
        ({"gird": {}}, "gird: unknown key"),
    ],
)
def test_bad_sweep_keys(tmp_path, change, message):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": BASE} | change))
    with pytest.raises(SpecError, match=message.replace("Value error, ", "")):
        load_sweep(path)


def sweep_file(tmp_path, root, **extra):
    path = tmp_path / "sweep.yaml"
    base = tiny_spec(root, train__epochs=2)
    path.write_text(
        yaml.safe_dump({"name": "abl", "base": base, "grid": {"kl.beta": [0.5, 2.0]}, "seeds": [0, 1]} | extra)
    )
    return path


def test_sweep_runs_writes_results_and_reruns_nothing(tmp_path, synthetic_root, monkeypatch, capsys):
    path = sweep_file(tmp_path, synthetic_root)
    out = tmp_path / "runs"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    sweep_dir = out / "abl"
    names = {"beta=0.5_seed=0", "beta=0.5_seed=1", "beta=2.0_seed=0", "beta=2.0_seed=1"}
    assert {p.name for p in sweep_dir.iterdir() if p.is_dir()} == names | {"figures"}
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert {r["run"] for r in rows} == names
    for row in rows:
        metrics = json.loads((sweep_dir / row["run"] / "metrics.json").read_text())
        assert float(row["test_nll_iw"]) == pytest.approx(metrics["test_nll_iw"]) and row["kl.beta"] in ("0.5", "2.0")
    table = (sweep_dir / "results.md").read_text()
    assert "mean ± std over seeds" in table and table.count("\n| ") == 3  # header + 2 points
    assert " ± " in table.splitlines()[-1]
    for kind in ("reconstructions", "samples", "interpolation", "traversal"):
        assert (sweep_dir / "figures" / f"{kind}_grid.png").stat().st_size > 1000
    assert (sweep_dir / "figures" / "rate_distortion.png").exists() and (
        sweep_dir / "figures" / "curves_grid.png"
    ).exists()
    assert "larger than" in (sweep_dir / "report.md").read_text() or "within" in (sweep_dir / "report.md").read_text()
    source = (sweep_dir / "report.typ").read_text()
    _, pages, main_pages = pdf.typeset(source, sweep_dir)
    assert main_pages <= pdf.MAIN_PAGES < pages == pdf.count_pages((sweep_dir / "report.pdf").read_bytes())
    assert "rate_distortion.png" in source and "<fig-sweep>" in source and "= Appendix" in source
    means = [sum(float(r["test_nll_iw"]) for r in rows if r["kl.beta"] == b) / 2 for b in ("0.5", "2.0")]
    assert f"#strong[{min(means):.2f} nats]" in source  # the abstract's headline: the best mean over seeds
    assert '<div class="figures">' in (sweep_dir / "report.html").read_text()
    nll = {n: torch.load(sweep_dir / n / "test_nll.pt", weights_only=True) for n in names}
    diffs = ((nll["beta=2.0_seed=0"] - nll["beta=0.5_seed=0"]) + (nll["beta=2.0_seed=1"] - nll["beta=0.5_seed=1"])) / 2
    assert (
        f"| {diffs.mean().item():+.3f} | {diffs.std().item() / len(diffs) ** 0.5:.3f} |"
        in (sweep_dir / "report.md").read_text()
    )
    assert nll["beta=0.5_seed=0"].mean().item() == pytest.approx(
        json.loads((sweep_dir / "beta=0.5_seed=0" / "metrics.json").read_text())["test_nll_iw"]
    )
    capsys.readouterr()

    before = {n: (sweep_dir / n / "metrics.json").read_bytes() for n in names}
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a finished point was trained again"))
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert "4 already finished, 0 to run" in capsys.readouterr().err
    assert {n: (sweep_dir / n / "metrics.json").read_bytes() for n in names} == before


class Killed(Exception):
    pass


def test_an_interrupted_point_resumes_and_finished_points_are_kept(tmp_path, synthetic_root, monkeypatch):
    path = sweep_file(tmp_path, synthetic_root, seeds=None)
    whole = executors.run_sweep(*load_sweep(path), tmp_path / "whole", figures=False)

    epochs_seen = []
    original = ProgressView.epoch_done

    def die_in_second_point(self, row):
        original(self, row)
        epochs_seen.append(row.epoch)
        if len(epochs_seen) == 3:  # point 1 done (2 epochs), point 2 after its first epoch
            raise Killed

    monkeypatch.setattr(ProgressView, "epoch_done", die_in_second_point)
    with pytest.raises(Killed):
        executors.run_sweep(*load_sweep(path), tmp_path / "killed", figures=False)
    killed = tmp_path / "killed" / "abl"
    assert (killed / "beta=0.5" / "metrics.json").exists() and not (killed / "beta=2.0" / "metrics.json").exists()
    assert (killed / "beta=2.0" / "checkpoint.pt").exists()
    kept = (killed / "beta=0.5" / "metrics.json").read_bytes()
    monkeypatch.setattr(ProgressView, "epoch_done", original)
    resumed = executors.run_sweep(*load_sweep(path), tmp_path / "killed", figures=False)
    assert (killed / "beta=0.5" / "metrics.json").read_bytes() == kept
    timing = {"train_seconds", "train_images_per_second", "iw_seconds", "phase_seconds"}
    strip = lambda ms: [{k: v for k, v in m.to_json().items() if k not in timing} for m in ms]
    assert strip(resumed) == strip(whole)


def test_shipped_sweeps_expand_and_validate():
    from pathlib import Path

    files = sorted(Path(__file__).parents[1].joinpath("experiments").glob("ablation-*.yaml"))
    assert len(files) == 8
    counts = {f.stem: len(load_sweep(f)[1]) for f in files}
    assert counts == {
        "ablation-annealing": 3,
        "ablation-init": 4,
        "ablation-architecture": 4,
        "ablation-beta": 5,
        "ablation-latent": 5,
        "ablation-zoo": 10,
        "ablation-families": 9,
        "ablation-likelihood": 3,
    }


def test_vaezoo_run_of_a_sweeps_spec_runs_the_sweep(tmp_path, synthetic_root, no_figures, capsys):
    """`vaezoo run assignment` is one command: a sweep's spec given to `run` runs as its sweep, and the
    sweep's `report` reaches sweep.json, from which the report is rebuilt."""
    base = tiny_spec(synthetic_root)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump({"name": "two", "base": base, "grid": {"kl.beta": [0.5, 2.0]}}))
    out = tmp_path / "runs"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    sweep_dir = out / "two"
    assert {r["run"] for r in csv.DictReader((sweep_dir / "results.csv").open())} == {"beta=0.5", "beta=2.0"}
    assert json.loads((sweep_dir / "sweep.json").read_text())["report"] == "comparison"
    assert capsys.readouterr().out.startswith("two: test set, per image")  # the table `vaezoo sweep` prints


def test_a_sweep_json_from_before_the_report_choice_reads_as_a_comparison(tmp_path, synthetic_root, no_figures):
    from vaezoo.outputs.sweep_files import read_sweep

    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"name": "old", "base": tiny_spec(synthetic_root), "grid": {"kl.beta": [1.0]}}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs")]) == 0
    manifest = tmp_path / "runs" / "old" / "sweep.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({k: v for k, v in data.items() if k != "report"}))
    assert read_sweep(manifest.parent).report == "comparison"
    manifest.write_text(json.dumps(data | {"report": "<script>"}))
    with pytest.raises(OutputError, match="sweep.json is damaged or from another version: report"):
        read_sweep(manifest.parent)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[1] / "experiments").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_spec_is_told_apart_as_a_sweep_or_an_experiment(path):
    """`vaezoo run NAME` runs a sweep's spec as its sweep; an experiment's spec built on a `base` is not one."""
    from vaezoo.sweeps.grid import is_sweep_file

    assert is_sweep_file(path) == (path.stem.startswith("ablation-") or path.stem == "assignment")
