"""Sweep tables and observations never rank one kind of NLL against another, and read the metric table;
paired differences between runs on the same test images."""

import math

import pytest
import torch

from tests.records import sweep_entry
from vaezoo.core.errors import SpecError
from vaezoo.evaluate.records import METRICS
from vaezoo.outputs.sweep_observations import sweep_observations
from vaezoo.outputs.sweep_report import sweep_table
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.sweeps.grid import SweepSpec

MASS = NLLKind.BINARY_MASS
DENSITY = NLLKind.DENSITY

ENTRIES = [
    sweep_entry("bern-a", MASS, 95.0, 0.90),
    sweep_entry("gauss", DENSITY, -700.0, 0.95),
    sweep_entry("bern-b", MASS, 97.0, 0.80),
]


def test_nll_columns_are_split_by_kind_and_rows_grouped_by_kind():
    table = sweep_table(ENTRIES, ["run"], "test_nll_iw").splitlines()
    header = table[0]
    assert f"test NLL (IS) [{MASS}]" in header and f"test NLL (IS) [{DENSITY}]" in header
    assert "probe acc. [" not in header  # a probe accuracy compares across kinds
    rows = [line.split("|")[1].strip() for line in table[2:]]
    assert rows == ["gauss", "bern-a", "bern-b"]  # grouped by kind, then sorted within it


def test_observations_rank_nll_only_within_a_kind():
    notes = sweep_observations(ENTRIES, ["run"], "test_nll_iw")
    assert any("different kinds" in note for note in notes)
    nll_notes = [n for n in notes if n.startswith("**test NLL")]
    assert nll_notes and all("among runs whose NLL is a" in n for n in nll_notes)
    assert not any("gauss wins" in n and "test NLL" in n for n in notes)  # one density alone is no winner
    # one seed and no per-image values: the best is named, never called a win
    assert any(n.startswith("**linear probe accuracy") and "gauss has the best value" in n for n in notes)
    assert not any(" wins " in n for n in notes)


def _entry(name, n=1, **values):
    from tests.records import run_metrics
    from vaezoo.outputs.sweep_entries import SweepEntry

    return SweepEntry({"run": name}, run_metrics(**values), n, {k: 1.0 for k in values} if n > 1 else {})


def test_a_difference_inside_its_noise_is_not_a_win():
    a, b = _entry("a", test_nll_iw=100.0), _entry("b", test_nll_iw=101.0)
    within = sweep_observations([a, b], ["run"], "test_nll_iw", lambda x, y, m: 0.6)  # 2 SE = 1.2 > 1.0
    beyond = sweep_observations([a, b], ["run"], "test_nll_iw", lambda x, y, m: 0.2)  # 2 SE = 0.4 < 1.0

    def nll(notes: list[str]) -> str:
        return next(n for n in notes if n.startswith("**test NLL"))

    assert "no winner" in nll(within) and " wins " not in nll(within)
    assert "a wins with 100" in nll(beyond) and "paired over test images" in nll(beyond)
    # seeds: two seeds each with std 1 give SE sqrt(1/2 + 1/2) = 1; a gap of 1 is inside 2 SE
    seeded = sweep_observations(
        [_entry("a", 2, test_nll_iw=100.0), _entry("b", 2, test_nll_iw=101.0)], ["run"], "test_nll_iw"
    )
    assert "no winner" in nll(seeded) and "across seeds" in nll(seeded)


def test_timing_is_never_a_win_and_tiny_differences_are_ties():
    a, b = _entry("a", train_seconds=10.0, probe_accuracy=0.9), _entry("b", train_seconds=10.03, probe_accuracy=0.9001)
    notes = sweep_observations([a, b], ["run"], "test_nll_iw", lambda x, y, m: None)  # no error bar
    assert not any("training time" in n for n in notes)
    assert any(n.startswith("**linear probe accuracy") and " tie " in n for n in notes)


def test_a_small_share_is_no_tie_where_an_error_bar_says_the_lead_is_real():
    """0.15 nats at 107 is under the tie share, but with a paired SE of 0.02 it is a lead of 7 SE."""
    a, b = _entry("a", test_nll_iw=107.47), _entry("b", test_nll_iw=107.62)
    notes = sweep_observations([a, b], ["run"], "test_nll_iw", lambda x, y, m: 0.02 if m.key == "test_nll_iw" else None)
    note = next(n for n in notes if n.startswith("**test NLL"))
    assert "a wins with 107.5" in note and " tie " not in note


@pytest.mark.parametrize("metric", [m for m in METRICS if m.better is not None], ids=lambda m: m.key)
def test_every_ranked_metric_can_head_a_sweep(metric):
    assert SweepSpec.model_validate({"name": "s", "base": "x.yaml", "headline": metric.key}).headline == metric.key


def test_an_unknown_headline_is_refused():
    from pydantic import ValidationError

    with pytest.raises((ValidationError, SpecError), match="unknown headline metric"):
        SweepSpec.model_validate({"name": "s", "base": "x.yaml", "headline": "accuracy"})


def test_paired_differences_against_the_first_point(tmp_path):
    """The paired mean and its standard error, per seed then averaged, computed by hand."""
    from vaezoo.outputs.paired import paired_differences

    g = torch.Generator().manual_seed(0)
    hard = 90 + 10 * torch.rand(500, generator=g, dtype=torch.float64)  # what every model finds hard
    runs = {
        "a_s0": hard,
        "a_s1": hard + 0.1,
        "b_s0": hard + 0.5 + 0.2 * torch.randn(500, generator=g, dtype=torch.float64),
        "b_s1": hard + 0.4 + 0.2 * torch.randn(500, generator=g, dtype=torch.float64),
    }
    for name, values in runs.items():
        (tmp_path / name).mkdir()
        torch.save(values, tmp_path / name / "test_nll.pt")
    points = [(n, {"variant": n[0], "seed": int(n[-1])}) for n in runs]
    (b,) = paired_differences(points, tmp_path)
    expected = ((runs["b_s0"] - runs["a_s0"]) + (runs["b_s1"] - runs["a_s1"])) / 2
    assert b.difference == pytest.approx(expected.mean().item()) and b.seeds == 2
    assert b.stderr == pytest.approx(expected.std().item() / math.sqrt(500)) and b.significant
    assert b.stderr < 0.1 * hard.std().item() / math.sqrt(500)  # pairing removed the shared spread
    (tmp_path / "b_s1" / "test_nll.pt").unlink()
    assert paired_differences(points, tmp_path) is None  # a run from before per-image NLLs were kept


def test_every_row_says_its_kl_estimator_and_a_hierarchy_its_kl_per_layer():
    rows = [
        sweep_entry("plain", MASS, 95.0, 0.9, kl_estimate="closed-form"),
        sweep_entry("vamp", MASS, 94.0, 0.9, kl_estimate="monte-carlo"),
        sweep_entry("two-layer", MASS, 93.0, 0.9, kl_estimate="closed-form per layer", layer_kl=[20.5, 3.25]),
    ]
    table = sweep_table(rows, ["run"], "test_nll_iw").splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[1] == "KL estimate" and header[-1] == "KL per layer, bottom first"
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in table[2:]}
    assert cells["vamp"][1] == "monte-carlo" and cells["vamp"][-1] == "—"
    assert cells["two-layer"][1] == "closed-form per layer" and cells["two-layer"][-1] == "20.50 / 3.25"
    assert "KL per layer" not in sweep_table(rows[:2], ["run"], "test_nll_iw")


def test_an_accuracy_is_observed_as_a_percentage_and_its_lead_in_points():
    a, b = _entry("a", 2, probe_accuracy=0.8742), _entry("b", 2, probe_accuracy=0.8100)
    a.std["probe_accuracy"] = b.std["probe_accuracy"] = 0.001
    note = next(n for n in sweep_observations([a, b], ["run"], "test_nll_iw") if n.startswith("**linear probe"))
    assert "a wins with 87.4 %" in note and "by 6.4 percentage points" in note and "0.8742" not in note
