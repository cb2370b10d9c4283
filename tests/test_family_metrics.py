"""The families' metrics: the total correlation of q(z) against the closed form of a Gaussian aggregate
posterior (zero for independent codes), the blocked MMD^2 against mmd_squared and a direct double sum,
the sample FID through the cached classifier and reproducible from its seed, and the fields in a run's
metrics.json (round trip; an older metrics.json without them still loads), the spec switches and the
metric table's entries that every output table reads."""

import json
import math

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import tiny_spec
from vaezoo.evaluate import classifier, family
from vaezoo.evaluate.family import blocked_mmd_squared, model_sample_fid, total_correlation
from vaezoo.evaluate.records import METRIC, RunMetrics
from vaezoo.parts.objectives.mmd import kernel_matrix, mmd_squared
from vaezoo.runs import runner
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate
from vaezoo.sweeps import executors
from vaezoo.sweeps.grid import load_sweep

FAMILY_KEYS = ("total_correlation", "posterior_prior_mmd", "sample_fid", "fid_classifier_accuracy")
NEW_FIELDS = {*FAMILY_KEYS, "total_correlation_estimator", "mmd_estimator", "fid_samples"}


def gaussian_codes(n: int, cov: torch.Tensor, noise_var: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n posteriors N(mu_n, noise_var I) with mu_n ~ N(0, cov): their aggregate is about N(0, cov + noise_var I)."""
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, len(cov), generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    return mu, torch.full_like(mu, math.log(noise_var))


def gaussian_tc(cov: torch.Tensor) -> float:
    """The total correlation of N(0, cov): (sum_d log cov_dd - log det cov) / 2."""
    return 0.5 * (cov.diagonal().log().sum() - torch.logdet(cov)).item()


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_total_correlation_matches_the_closed_form_of_a_gaussian_aggregate(rho):
    """Correlated posterior means give the Gaussian aggregate's TC; independent ones give about 0."""
    noise = 0.25
    cov = torch.tensor([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    mu, logvar = gaussian_codes(4000, cov, noise, seed=1)
    expected = gaussian_tc(cov + noise * torch.eye(3, dtype=torch.float64))
    estimate = total_correlation(mu, logvar, torch.Generator().manual_seed(2))
    assert estimate == pytest.approx(expected, abs=0.03)


def test_total_correlation_is_the_mean_of_log_q_minus_the_log_marginals_at_each_draw(monkeypatch):
    """Blocks of any size give the direct sum over the mixture, written out here term by term."""
    monkeypatch.setattr(family, "TC_ELEMENTS", 7)  # 2 rows per block of 30 x 3: several blocks, one short
    generator = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(30, 3, generator=generator), torch.randn(30, 3, generator=generator) * 0.3
    z = (mu + (0.5 * logvar).exp() * torch.randn(30, 3, generator=torch.Generator().manual_seed(5))).double()
    var = logvar.double().exp()
    per_dim = -0.5 * ((z[:, None] - mu.double()[None]) ** 2 / var[None] + var[None].log() + math.log(2 * math.pi))
    log_qz = torch.logsumexp(per_dim.sum(-1), 1) - math.log(30)
    log_marginals = (torch.logsumexp(per_dim, 1) - math.log(30)).sum(-1)
    direct = (log_qz - log_marginals).mean().item()
    assert total_correlation(mu, logvar, torch.Generator().manual_seed(5)) == pytest.approx(direct, abs=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 9), st.integers(2, 9), st.sampled_from(["rbf", "imq"]))
def test_blocked_mmd_is_mmd_squared_and_the_direct_double_sum(seed, n, m, kernel):
    generator = torch.Generator().manual_seed(seed)
    z, prior_z = torch.randn(n, 3, generator=generator, dtype=torch.float64), torch.randn(m, 3, generator=generator)
    prior_z = prior_z.double() + 0.5
    c = 2 * 3 * 1.5**2

    def k(a, b):
        d = (a - b).square().sum().item()
        return math.exp(-d / c) if kernel == "rbf" else c / (c + d)

    within_q = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_p = sum(k(prior_z[i], prior_z[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(z[i], prior_z[j]) for i in range(n) for j in range(m)) / (n * m)
    direct = within_q + within_p - 2 * across
    whole = mmd_squared(z, prior_z, kernel, 1.5).item()
    assert whole == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert blocked_mmd_squared(z, prior_z, kernel, 1.5) == pytest.approx(direct, rel=1e-9, abs=1e-12)
    blocked = family.MMD_BLOCK
    try:
        family.MMD_BLOCK = 2  # blocks smaller than the sets, the diagonal left out in each diagonal block
        assert blocked_mmd_squared(z, prior_z, kernel, 1.5) == pytest.approx(direct, rel=1e-9, abs=1e-12)
    finally:
        family.MMD_BLOCK = blocked
    assert kernel_matrix(z, z, kernel, 1.5).shape == (n, n)


def test_the_mmd_of_the_prior_with_itself_is_about_zero_and_of_a_shifted_set_is_not():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3000, 4, generator=generator, dtype=torch.float64)
    assert abs(blocked_mmd_squared(a, b, "imq", 1.0)) < 2e-3
    assert blocked_mmd_squared(a + 1.0, b, "imq", 1.0) > 0.05


@pytest.fixture
def classifier_cache(tmp_path, monkeypatch):
    """The classifier's cache in a folder of the test's own (never the user's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "vaezoo" / "classifiers"


def test_the_sample_fid_uses_the_cached_classifier_and_repeats_with_its_seed(
    synthetic_root, classifier_cache, monkeypatch
):
    spec = validate(tiny_spec(synthetic_root), "test")
    model = build_model(spec.model, (1, 28, 28))
    first = model_sample_fid(model, spec.data, samples=50, batch_size=16)
    assert [path.suffix for path in classifier_cache.iterdir()] == [".pt"]
    assert first.fid > 0 and 0 < first.classifier_accuracy <= 1
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: pytest.fail("the cache was not used"))
    again = model_sample_fid(model, spec.data, samples=50, batch_size=16)
    assert again == first  # the same classifier, the same prior draws (FID_SEED), the same number
    monkeypatch.setattr(family, "FID_SEED", 1)
    assert model_sample_fid(model, spec.data, samples=50, batch_size=16).fid != first.fid


def test_a_run_records_the_family_metrics_and_its_metrics_json_round_trips(tmp_path, synthetic_root, classifier_cache):
    spec = validate(
        tiny_spec(synthetic_root, eval={"iw_samples": 4, "batch_size": 50, "fid_samples": 64, "family_metrics": True}),
        "t",
    )
    metrics = runner.run(spec, tmp_path, figures=False)
    assert metrics.total_correlation is not None and metrics.posterior_prior_mmd is not None
    assert "N = 60 test posteriors" in metrics.total_correlation_estimator
    assert "c = 2 D = 8" in metrics.mmd_estimator
    assert metrics.sample_fid > 0 and metrics.fid_samples == 64 and 0 < metrics.fid_classifier_accuracy <= 1
    assert {"family_metrics", "sample_fid"} <= metrics.phase_seconds.keys()
    saved = json.loads((tmp_path / "tiny" / "metrics.json").read_text())
    assert RunMetrics.from_json(saved, "metrics.json") == metrics
    older = {key: value for key, value in saved.items() if key not in NEW_FIELDS}  # a run made before them
    loaded = RunMetrics.from_json(older, "an older metrics.json")
    assert all(loaded.value(key) is None for key in FAMILY_KEYS)


def test_the_family_metrics_are_off_when_the_spec_says_so(tmp_path, synthetic_root):
    spec = validate(tiny_spec(synthetic_root, eval={"iw_samples": 4, "family_metrics": False, "fid_samples": 0}), "t")
    metrics = runner.run(spec, tmp_path, figures=False)
    assert all(metrics.value(key) is None for key in FAMILY_KEYS)
    assert not {"family_metrics", "sample_fid"} & metrics.phase_seconds.keys()


@pytest.mark.parametrize("value", [-1, 10**7, "many"])
def test_the_fid_sample_count_is_bounded(synthetic_root, value):
    with pytest.raises(Exception, match="eval.fid_samples"):
        validate(tiny_spec(synthetic_root, eval={"fid_samples": value}), "t")


def test_a_flow_posterior_has_no_total_correlation_but_an_mmd(tmp_path, synthetic_root):
    data = tiny_spec(synthetic_root, eval={"iw_samples": 4, "fid_samples": 0, "family_metrics": True})
    data["model"]["posterior"] = {"kind": "iaf"}
    metrics = runner.run(validate(data, "t"), tmp_path, figures=False)
    assert metrics.total_correlation is None and metrics.posterior_prior_mmd is not None


def test_the_run_report_and_the_sweep_table_show_the_family_columns(tmp_path, synthetic_root, classifier_cache):
    base = tiny_spec(
        synthetic_root, eval={"iw_samples": 4, "batch_size": 50, "fid_samples": 32, "family_metrics": True}
    )
    tcvae = {"objective": {"kind": "tcvae", "tc": 6.0}}
    sweep = {"name": "fam", "base": base, "variants": [{"name": "plain"}, {"name": "tcvae", "set": tcvae}]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    executors.run_sweep(*load_sweep(path), tmp_path / "runs", figures=False)
    header = (tmp_path / "runs" / "fam" / "results.md").read_text().split("\n| ")[1]
    for key in FAMILY_KEYS:
        assert f" {METRIC[key].short} " in header.replace("\\", "")
    report = (tmp_path / "runs" / "fam" / "tcvae" / "report.md").read_text().replace("\\", "")
    assert METRIC["total_correlation"].heading() in report and "FID" in report


@pytest.mark.parametrize("key", FAMILY_KEYS)
def test_each_family_metric_has_a_labelled_entry_in_the_metric_table(key):
    metric = METRIC[key]
    assert metric.label and metric.short and metric.format(None) == "—"
    assert metric.heading().startswith(metric.label)
    assert (metric.unit == "nats") == (key == "total_correlation")
