"""A sweep folder read back as a typed SweepSummary, and the sweep's tables computed from it: the
summary holds what each run saved, seeds average to their mean and std, an NLL kind labels its column."""

import json
import statistics

import pytest

from tests.records import history_row, run_metrics
from vaezoo.core import io
from vaezoo.evaluate.records import METRIC
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.sweep_files import read_sweep
from vaezoo.outputs.sweep_report import markdown_table
from vaezoo.outputs.sweep_tables import column_label, csv_rows, sweep_tables
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.spec.experiment import validate

NLL = {(0.5, 0): 95.0, (0.5, 1): 96.5, (2.0, 0): 99.0, (2.0, 1): 98.0}


def write_sweep(sweep_dir, kinds=None):
    """A finished sweep of kl.beta in {0.5, 2.0} over seeds 0 and 1, each run's files written by hand."""
    points, saved = [], {}
    for (beta, seed), nll in NLL.items():
        name = f"beta={beta}_seed={seed}"
        spec = validate({"name": name, "seed": seed, "kl": {"kind": "constant", "beta": beta}}, "t")
        kind = (kinds or {}).get(beta, NLLKind.BINARY_MASS)
        metrics = run_metrics(test_nll_iw=nll, test_kl=20 + seed, active_units=3 + seed, nll_kind=kind)
        history = [history_row(1), history_row(2, val_neg_elbo=nll)]
        run_dir = io.ensure_folder(sweep_dir / name)
        io.write_json(run_dir / "metrics.json", metrics.to_json())
        io.write_text(run_dir / "history.jsonl", "".join(json.dumps(row.to_json()) + "\n" for row in history))
        io.write_text(run_dir / "spec.yaml", spec.to_yaml())
        points.append([name, {"kl.beta": beta, "seed": seed}])
        saved[name] = (metrics, history, spec)
    io.write_json(sweep_dir / "sweep.json", {"name": "abl", "headline": "test_nll_iw", "points": points})
    return saved


def test_the_summary_holds_what_each_run_saved(tmp_path):
    saved = write_sweep(tmp_path)
    summary = read_sweep(tmp_path)
    assert summary.name == "abl" and summary.headline == "test_nll_iw" and summary.keys == ["kl.beta", "seed"]
    assert [p.name for p in summary.points] == list(saved)
    for point in summary.points:
        metrics, history, spec = saved[point.name]
        assert point.metrics == metrics and point.history == history and point.spec == spec
        assert point.metrics.nll_kind is NLLKind.BINARY_MASS


def test_seeds_average_to_their_mean_and_std_in_the_table(tmp_path):
    write_sweep(tmp_path)
    tables = sweep_tables(read_sweep(tmp_path), tmp_path)
    assert tables.keys == ["kl.beta"] and [entry.n for entry in tables.entries] == [2, 2]
    nll = METRIC["test_nll_iw"]
    column = tables.header.index(md(nll.short))
    for beta, entry in zip((0.5, 2.0), tables.entries):
        values = [NLL[beta, 0], NLL[beta, 1]]
        assert entry.metrics.test_nll_iw == pytest.approx(statistics.mean(values))
        assert entry.std["test_nll_iw"] == pytest.approx(statistics.stdev(values))
        assert entry.metrics.active_units == pytest.approx(3.5)
        row = next(row for row in tables.rows if row[0] == md(beta))
        assert row[column] == f"{nll.format(statistics.mean(values))} ± {nll.format(statistics.stdev(values))}"
    assert [row[0] for row in tables.rows] == ["0.5", "2.0"]  # the lower mean NLL first
    assert "mean ± std over seeds" in tables.caption and tables.paired is None  # no per-image NLLs saved
    assert markdown_table(tables.header, tables.rows).count("\n| ") == 2


def test_csv_rows_are_each_run_s_record(tmp_path):
    saved = write_sweep(tmp_path)
    rows = csv_rows(read_sweep(tmp_path))
    for row in rows:
        metrics = saved[row["run"]][0]
        assert row["test_nll_iw"] == metrics.test_nll_iw and row["nll_kind"] == metrics.nll_kind.value
        assert row["kl.beta"] in (0.5, 2.0) and "kl_per_dim" not in row  # scalars only


@pytest.mark.parametrize("kind", list(NLLKind), ids=lambda k: k.name)
def test_an_nll_kind_labels_its_column(kind):
    nll = METRIC["test_nll_iw"]
    assert column_label(nll, kind) == f"{md(nll.short)} [{md(kind.value)}]"
    assert column_label(nll, None) == md(nll.short)


def test_runs_of_two_kinds_get_a_column_each(tmp_path):
    write_sweep(tmp_path, kinds={2.0: NLLKind.DENSITY})
    tables = sweep_tables(read_sweep(tmp_path), tmp_path)
    nll = METRIC["test_nll_iw"]
    assert {column_label(nll, NLLKind.BINARY_MASS), column_label(nll, NLLKind.DENSITY)} <= set(tables.header)
    assert md(nll.short) not in tables.header
    assert any("different kinds" in note for note in tables.notes)
