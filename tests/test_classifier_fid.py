"""The classifier FID: the Frechet distance against its closed forms (one dimension; two, where
tr (S_a S_b)^(1/2) has one of its own), zero for a set against itself, symmetric, blind to a rotation of
both sets; the fitted Gaussians are the sets' own moments; the classifier trains on the synthetic
digits, its cache round-trips and a stale or damaged one is refused and retrained."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import needs_mnist
from vaezoo.core.errors import OutputError
from vaezoo.data.datasets import DATASETS, DataSpec
from vaezoo.evaluate import classifier
from vaezoo.evaluate.classifier import (
    FEATURES,
    cache_key,
    classifier_fid,
    classifier_for,
    frechet_distance,
    gaussian_fit,
    grey,
    load_classifier,
    sample_fid,
)

seeds = st.integers(0, 2**31 - 1)


def random_spd(dim: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(dim, dtype=torch.float64)


def with_moments(mean: torch.Tensor, cov: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points whose sample mean and unbiased covariance are exactly `mean` and `cov`."""
    raw = torch.randn(n, len(mean), generator=generator, dtype=torch.float64)
    raw = raw - raw.mean(0)
    white = raw @ torch.linalg.inv(torch.linalg.cholesky(raw.T @ raw / (n - 1))).T
    return white @ torch.linalg.cholesky(cov).T + mean


@settings(max_examples=50, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(0.01, 10), st.floats(0.01, 10))
def test_one_dimension_is_the_squared_difference_of_means_and_of_deviations(m1, m2, s1, s2):
    moments = [torch.tensor(value, dtype=torch.float64) for value in ([m1], [[s1**2]], [m2], [[s2**2]])]
    distance = frechet_distance(*moments)
    assert distance == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-6, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(seeds)
def test_two_dimensions_match_the_closed_form_trace_of_the_root(seed):
    """For 2 x 2, the eigenvalues l1, l2 of S_a S_b are real and non-negative, so
    tr (S_a S_b)^(1/2) = sqrt(l1) + sqrt(l2) = sqrt(tr(S_a S_b) + 2 sqrt(det(S_a S_b)))."""
    generator = torch.Generator().manual_seed(seed)
    cov_a, cov_b = random_spd(2, generator), random_spd(2, generator)
    mean_a, mean_b = torch.randn(2, 2, generator=generator, dtype=torch.float64)
    product = cov_a @ cov_b
    cross = math.sqrt(product.trace().item() + 2 * math.sqrt(torch.linalg.det(product).item()))
    expected = (mean_a - mean_b).square().sum().item() + (cov_a.trace() + cov_b.trace()).item() - 2 * cross
    assert frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-7, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 12))
def test_diagonal_covariances_give_the_sum_over_dimensions(seed, dim):
    generator = torch.Generator().manual_seed(seed)
    var_a, var_b = torch.rand(2, dim, generator=generator, dtype=torch.float64) * 4
    mean_a, mean_b = torch.randn(2, dim, generator=generator, dtype=torch.float64)
    expected = ((mean_a - mean_b).square() + (var_a.sqrt() - var_b.sqrt()).square()).sum().item()
    distance = frechet_distance(mean_a, torch.diag(var_a), mean_b, torch.diag(var_b))
    assert distance == pytest.approx(expected, rel=1e-7, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 16))
def test_fitted_gaussians_are_the_sets_own_moments(seed, dim):
    generator = torch.Generator().manual_seed(seed)
    mean, cov = torch.randn(dim, generator=generator, dtype=torch.float64), random_spd(dim, generator)
    points = with_moments(mean, cov, 200, generator)
    fitted_mean, fitted_cov = gaussian_fit(points)
    torch.testing.assert_close(fitted_mean, mean)
    torch.testing.assert_close(fitted_cov, cov)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 16))
def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric_and_rotation_blind(seed, dim):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(300, dim, generator=generator, dtype=torch.float64) @ random_spd(dim, generator)
    b = torch.randn(250, dim, generator=generator, dtype=torch.float64) * 2 + 1
    assert classifier_fid(a, a) == pytest.approx(0.0, abs=1e-6 * (1 + a.var(0).sum().item()))
    ab = classifier_fid(a, b)
    assert ab > 0
    assert classifier_fid(b, a) == pytest.approx(ab, rel=1e-6)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    assert classifier_fid(a @ rotation, b @ rotation) == pytest.approx(ab, rel=1e-6)


def test_sets_drawn_with_given_moments_are_their_gaussians_distance_apart():
    generator = torch.Generator().manual_seed(0)
    mean_a, mean_b = torch.zeros(5, dtype=torch.float64), torch.linspace(-1, 1, 5, dtype=torch.float64)
    cov_a, cov_b = random_spd(5, generator), random_spd(5, generator)
    a, b = with_moments(mean_a, cov_a, 400, generator), with_moments(mean_b, cov_b, 300, generator)
    assert classifier_fid(a, b) == pytest.approx(frechet_distance(mean_a, cov_a, mean_b, cov_b), rel=1e-8)


def synthetic(root) -> DataSpec:
    return DataSpec(dataset="synthetic", root=str(root))


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifiers")
    return classifier_for(synthetic(synthetic_root), cache_dir=cache, epochs=20), cache


def test_the_classifier_learns_the_synthetic_digits_and_caches_itself(trained, synthetic_root):
    first, cache = trained
    assert first.test_accuracy > 0.9 and first.train_seconds > 0 and first.dataset == "synthetic"
    again = classifier_for(synthetic(synthetic_root), cache_dir=cache, epochs=20)
    assert again.train_seconds == 0.0 and again.test_accuracy == first.test_accuracy
    for name, value in first.network.state_dict().items():
        torch.testing.assert_close(again.network.state_dict()[name], value)
    images, _ = DATASETS.get("synthetic").read_split(synthetic_root, train=False)
    features = again.network.features(grey(images))
    assert features.shape == (len(images), FEATURES) and features.dtype == torch.float64


def cached_file(cache, seed=0):
    return cache / f"{cache_key(DATASETS.get('synthetic'), seed, epochs=20)}.pt"


def test_a_damaged_cache_is_refused_and_retrained(trained, synthetic_root, tmp_path):
    _, cache = trained
    source = cached_file(cache)
    key = source.stem
    saved = torch.load(source, weights_only=True)
    saved["state"]["head.bias"][0] += 1.0  # a changed weight: the file loads, its fingerprint does not match
    damaged = tmp_path / source.name
    torch.save(saved, damaged)
    with pytest.raises(OutputError, match="fingerprint"):
        load_classifier(damaged, key)
    damaged.write_bytes(source.read_bytes()[:1000])  # a truncated file
    with pytest.raises(OutputError, match=str(damaged)):
        load_classifier(damaged, key)
    with pytest.warns(UserWarning, match="retraining the classifier"):
        retrained = classifier_for(synthetic(synthetic_root), cache_dir=tmp_path, epochs=20)
    assert retrained.train_seconds > 0
    assert load_classifier(damaged, key).test_accuracy == retrained.test_accuracy  # rewritten whole


def test_a_cache_for_another_key_is_refused(trained, synthetic_root):
    _, cache = trained
    other = cached_file(cache, seed=1)  # another seed's name over seed 0's weights
    other.write_bytes(cached_file(cache).read_bytes())
    with pytest.raises(OutputError, match="not"):
        load_classifier(other, other.stem)


def test_a_new_architecture_version_never_reads_an_older_cache(trained, synthetic_root, monkeypatch):
    _, cache = trained
    older = cached_file(cache).stem
    monkeypatch.setattr(classifier, "VERSION", classifier.VERSION + 1)
    assert cache_key(DATASETS.get("synthetic"), 0, epochs=20) != older
    rebuilt = classifier_for(synthetic(synthetic_root), cache_dir=cache, epochs=20)
    assert rebuilt.train_seconds > 0  # trained, not read from the older version's file


class ImagesAsSamples(torch.nn.Module):
    """A stand-in model whose samples are given images, in order, outside [0, 1] by a margin."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images, self.drawn, self.anchor = images, 0, torch.nn.Parameter(torch.zeros(()))

    def sample(self, n, generator):
        chunk = self.images[self.drawn : self.drawn + n]
        self.drawn += n
        return chunk * 1.5 - 0.25  # clamped back by sample_fid wherever the values left [0, 1]


def test_sample_fid_draws_in_chunks_and_compares_the_clamped_samples_with_the_real_images(trained, synthetic_root):
    classifier = trained[0].network
    images, _ = DATASETS.get("synthetic").read_split(synthetic_root, train=False)
    real = grey(images)
    stand_in = ImagesAsSamples((real + 0.25) / 1.5)  # what sample_fid receives is `real` before clamping
    assert sample_fid(stand_in, classifier, real, samples=len(real), batch_size=7) == pytest.approx(0.0, abs=1e-6)
    assert stand_in.drawn == len(real)
    noise = ImagesAsSamples(torch.rand(len(real), *real.shape[1:], generator=torch.Generator().manual_seed(0)))
    assert sample_fid(noise, classifier, real, samples=len(real)) > 1.0


@pytest.mark.slow
@needs_mnist
def test_the_mnist_classifier_passes_98_percent(tmp_path):
    trained = classifier_for(DataSpec(dataset="mnist"), cache_dir=tmp_path)
    assert trained.test_accuracy > 0.98
