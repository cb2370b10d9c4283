"""A run's report tables, computed from its typed records apart from the writers: every number is the
RunMetrics' value at the metric table's precision, and the writers show exactly those cells."""

from pathlib import Path

import pytest

from tests.records import history_row, run_metrics
from vaezoo.evaluate.records import METRIC, METRICS
from vaezoo.outputs import report, run_pdf
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.run_tables import metrics_rows, tables_for, training_observations
from vaezoo.outputs.typst_markup import inline
from vaezoo.parts.likelihoods import NLLKind
from vaezoo.spec.experiment import validate

SPEC = validate({"name": "x"}, "t")
METRICS_OF_A_RUN = run_metrics(test_nll_iw=87.123, test_kl=21.987, probe_accuracy=0.9634, active_units=17)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.key)
def test_each_row_is_the_metric_s_value_formatted(metric):
    rows = dict(metrics_rows(METRICS_OF_A_RUN))
    value = getattr(METRICS_OF_A_RUN, metric.key)
    assert rows[md(metric.heading())].startswith(metric.format(value))


def test_bits_per_dim_only_for_a_mass_and_the_nll_kind_said():
    density = run_metrics(nll_kind=NLLKind.DENSITY, test_bits_per_dim=None)
    headings = [heading for heading, _ in metrics_rows(density)]
    assert not any("bits per dimension" in heading for heading in headings)
    assert dict(metrics_rows(density))["what the NLL is"] == md(NLLKind.DENSITY.value) + ", of p(x)"
    assert any("bits per dimension" in heading for heading, _ in metrics_rows(run_metrics()))


@pytest.mark.parametrize("kind", list(NLLKind), ids=lambda k: k.name)
def test_only_bce_on_grey_levels_is_called_not_a_likelihood(kind):
    notes = tables_for(SPEC, run_metrics(nll_kind=kind), [history_row(1)], []).notes
    assert any("not log-likelihoods" in note for note in notes) == (kind is NLLKind.BERNOULLI_ON_GREY)


def test_the_last_epoch_s_trend_is_read_from_the_history_rows():
    def rows(*values):
        return [history_row(i + 1, val_neg_elbo=v) for i, v in enumerate(values)]

    assert "still improving" in training_observations(rows(101.0, 100.0))[0]
    assert "overfitting" in training_observations(rows(100.0, 101.0))[0]
    assert "(flat)" in training_observations(rows(100.0, 100.05))[0]
    assert training_observations(rows(100.0)) == []  # one epoch: no trend
    assert training_observations(rows(100.0, None)) == []  # no validation in the last epoch


def test_the_writers_show_the_computed_cells_and_notes():
    tables = tables_for(SPEC, METRICS_OF_A_RUN, [history_row(1), history_row(2)], [])
    text = report.run_markdown(tables)
    source = run_pdf.run_source(Path("/nonexistent"), tables)
    for heading, value in tables.metric_rows + tables.spec_rows:
        assert f"| {heading} | {value} |" in text
    for note in tables.notes:
        assert f"- {note}" in text and inline(note) in source
    assert "87.12 ± 0.30 (K = 100)" in text and "96.3 %" in text and "#strong[87.12 ± 0.30 nats]" in source


@pytest.mark.parametrize(
    ("changes", "labelled"),
    [({}, False), ({"likelihood_of": "p(x|y)"}, True), ({"test_class_error": 0.28}, True)],
)
def test_a_model_whose_encoder_reads_labels_is_not_said_to_learn_them_unsupervised(changes, labelled):
    """A conditional VAE's and M2's codes are read given the true labels: the probe sentence says so,
    and M2's rate row and abstract say what else they hold (the latent label's KL, the test error)."""
    metrics = run_metrics(**changes)
    tables = tables_for(SPEC, metrics, [history_row(1)], [])
    probe = next(note for note in tables.notes if note.startswith("A linear classifier"))
    assert ("without ever being trained on" in probe) is not labelled
    assert ("true label beside it" in probe) is labelled
    kl_row = dict(metrics_rows(metrics))[md(METRIC["test_kl"].heading())]
    semi = "test_class_error" in changes
    assert (md("KL(q(y|x) || p(y))") in kl_row) is semi
    assert ("misclassifies **28.00 %**" in run_pdf.abstract(SPEC, metrics)) is semi
