"""The importance-weighted estimator against a VAE whose log p(x) is known exactly, and the latent metrics."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linear_gaussian import linear_gaussian
from tests.test_components import IMAGE, example_images, spec_for
from vaezoo.evaluate import bounds, chunking, latents, probe
from vaezoo.model.distributions import gaussian_log_density, log_mixture
from vaezoo.parts import DECODERS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate


@pytest.mark.parametrize("samples", [1, 10, 100])
def test_exact_posterior_gives_exact_log_likelihood_for_any_k(samples):
    model, x, exact = linear_gaussian()
    estimate = bounds.log_likelihood_iw(model, x, samples, torch.Generator().manual_seed(1))
    assert torch.allclose(estimate, exact, atol=1e-9)


def test_chunked_samples_still_exact(monkeypatch):
    model, x, exact = linear_gaussian()
    monkeypatch.setattr(chunking, "CPU_ELEMENT_BUDGET", 7 * 64 * 6)  # batches of 64 images, 7 samples a chunk
    estimate = bounds.log_likelihood_iw(model, x, 50, torch.Generator().manual_seed(1))
    assert torch.allclose(estimate, exact, atol=1e-9)
    result = bounds.importance_weighted_nll(model, x, 50, batch_size=64)
    assert result.nll == pytest.approx(-exact.mean().item(), abs=1e-9)
    assert result.stderr == pytest.approx(exact.std().item() / math.sqrt(len(exact)), rel=1e-6)


@pytest.mark.parametrize("decoder", DECODERS.names())
@pytest.mark.parametrize("budget", [1, 5000, 1 << 22])
def test_is_chunks_fit_the_budget_and_chunking_leaves_the_estimate_unchanged(monkeypatch, decoder, budget):
    """Whatever the chunks, L_K is the logsumexp of the same weights as one call drawing all K would give."""
    monkeypatch.setattr(chunking, "CPU_ELEMENT_BUDGET", budget)
    spec = spec_for({"model.decoder": decoder})
    torch.manual_seed(0)
    model = build_model(spec.model, IMAGE)
    x = example_images(spec, n=6)
    footprint = chunking.decoder_footprint(model, x)
    chunks = chunking.is_chunks(model, 40, batch_size=4, images=x)
    assert chunks.images * chunks.samples * footprint <= budget or chunks.images == chunks.samples == 1
    assert 1 <= chunks.images <= 4 and 1 <= chunks.samples <= 40
    drawn = []
    log_weights = model.log_weights
    monkeypatch.setattr(model, "log_weights", lambda *args: drawn.append(log_weights(*args)) or drawn[-1])
    result = bounds.importance_weighted_nll(model, x, 40, batch_size=4)
    batches = [torch.cat(drawn[i : i + calls]) for i, calls in enumerate_batches(chunks, len(x), 40)]
    reference = torch.cat([torch.logsumexp(w.double(), 0) - math.log(40) for w in batches])
    assert all(len(w) == 40 for w in batches)
    assert result.nll == pytest.approx(-reference.mean().item(), rel=1e-12)


def enumerate_batches(chunks: chunking.Chunks, images: int, samples: int) -> list[tuple[int, int]]:
    """(first call, number of calls) of each image batch's log_weights calls."""
    calls = math.ceil(samples / chunks.samples)
    return [(i * calls, calls) for i in range(math.ceil(images / chunks.images))]


def test_decoder_footprint_counts_every_layer_output():
    spec = validate({"name": "x", "model": {"latent_dim": 4, "decoder": {"hidden": [30, 50]}}}, "t")
    model = build_model(spec.model, (1, 28, 28))
    # Linear 30, activation 30, Linear 50, activation 50, Linear to 784 logits, plus their output bias
    assert chunking.decoder_footprint(model, torch.zeros(1)) == 30 + 30 + 50 + 50 + 784 + 784


def test_poorer_posterior_bound_rises_with_k_toward_log_px_and_elbo_stays_below():
    model, x, exact = linear_gaussian(shift=0.6, inflate=3.0)
    iw_bounds = [
        bounds.log_likelihood_iw(model, x, k, torch.Generator().manual_seed(2)).mean() for k in (1, 10, 100, 1000)
    ]
    assert iw_bounds[0] < iw_bounds[1] < iw_bounds[2] < iw_bounds[3] < exact.mean()
    assert exact.mean() - iw_bounds[3] < 0.25 * (exact.mean() - iw_bounds[0])  # most of the gap is closed
    elbo = bounds.elbo_means(model, x, batch_size=100)
    assert -elbo.neg_elbo < exact.mean().item()


def test_active_units_and_kl_per_dim():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1000, 4, generator=g) * torch.tensor([1.0, 0.5, 0.05, 0.0])
    logvar = torch.zeros(1000, 4)
    model = build_model(validate({"name": "x", "model": {"latent_dim": 4}}, "t").model, (1, 28, 28))
    stats = latents.latent_stats(model, mu, logvar)
    assert stats.active == [True, True, False, False]
    expected = 0.5 * mu.square().mean(0)
    assert stats.kl_per_dim == pytest.approx(expected.tolist(), rel=1e-5)


def test_mutual_information_is_zero_for_a_collapsed_posterior_and_log_n_for_a_sharp_one():
    n = 2000
    collapsed = latents.mutual_information(torch.zeros(n, 3), torch.zeros(n, 3))
    assert abs(collapsed) < 0.05
    mu = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 2) * 10
    sharp = latents.mutual_information(mu, torch.full((n, 2), -4.0))
    assert sharp == pytest.approx(math.log(n), abs=1e-3)


def test_probe_separates_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2000) % 10
    centres = torch.randn(10, 5, generator=g) * 5
    features = centres[labels] + 0.1 * torch.randn(2000, 5, generator=g)
    assert probe.probe_accuracy(features[:1500], labels[:1500], features[1500:], labels[1500:], 10) == 1.0
    noise = torch.randn(2000, 5, generator=g)
    assert probe.probe_accuracy(noise[:1500], labels[:1500], noise[1500:], labels[1500:], 10) < 0.25


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 300), st.integers(1, 40), st.floats(0.1, 5.0), st.floats(-8, 2))
def test_log_mixture_by_matrix_products_equals_the_elementwise_sum(seed, n, dims, scale, log_scale):
    g = torch.Generator().manual_seed(seed)
    mu = scale * torch.randn(n, dims, generator=g)
    logvar = torch.randn(n, dims, generator=g) + log_scale  # sharp posteriors make the cancellation hardest
    z = scale * torch.randn(17, dims, generator=g)
    elementwise = gaussian_log_density(z[:, None, :].double(), mu[None].double(), logvar[None].double()).sum(-1)
    reference = torch.logsumexp(elementwise, dim=1) - math.log(n)
    torch.testing.assert_close(log_mixture(z, mu, logvar), reference, rtol=1e-5, atol=0)


def reference_probe(x_train, y_train, classes, weight_decay=1e-4):
    """The straightforward probe: nn.Linear, F.cross_entropy, the same L-BFGS settings."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_train.shape[1], classes, dtype=x_train.dtype)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=200, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x_train), y_train) + weight_decay * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_fits_the_same_classifier_as_the_straightforward_one(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3000) % 10
    features = torch.randn(10, 6, generator=g)[labels] + 1.5 * torch.randn(3000, 6, generator=g)  # overlapping classes
    x = ((features - features.mean(0)) / features.std(0)).double()  # float32 L-BFGS stalls short of 1e-5
    weight, bias = probe.fit_probe(x, labels, 10, 1e-4)
    reference = reference_probe(x, labels, 10)
    # the same convex objective, minimized along different paths to the same value
    ours = F.cross_entropy(x @ weight.T + bias, labels) + 1e-4 * weight.square().sum()
    theirs = F.cross_entropy(reference(x), labels) + 1e-4 * reference.weight.square().sum()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    accuracy = probe.probe_accuracy(features[:2000], labels[:2000], features[2000:], labels[2000:], 10)
    mean, std = features[:2000].mean(0), features[:2000].std(0)
    fitted = reference_probe(((features[:2000] - mean) / std).double(), labels[:2000], 10)
    expected = (fitted(((features[2000:] - mean) / std).double()).argmax(1) == labels[2000:]).double().mean().item()
    assert accuracy == pytest.approx(expected, rel=1e-5)
