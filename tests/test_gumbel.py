"""The Gumbel-softmax posterior and the categorical prior (`vaezoo.parts.gumbel`), each checked against an
independent computation: torch.distributions' categorical and relaxed one-hot categorical, the
Gumbel-max trick's frequencies, and exact log p(x) by enumerating every code of a tiny latent."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Categorical, Normal, RelaxedOneHotCategorical, kl_divergence

from tests.test_train import spec_for
from vaezoo.core.errors import SpecError
from vaezoo.evaluate import bounds
from vaezoo.evaluate.latents import categorical_mutual_information, code_moments, latent_stats
from vaezoo.model.distributions import CategoricalCode
from vaezoo.outputs import figures
from vaezoo.parts.gumbel import CategoricalPrior, GumbelPosterior, concrete_log_density
from vaezoo.runs import runner
from vaezoo.spec import build
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)


def posterior(categories=4, latent_dim=8, temperature=1.0, straight_through=False, in_features=5):
    return GumbelPosterior(
        in_features=in_features,
        latent_dim=latent_dim,
        categories=categories,
        temperature=temperature,
        min_temperature=min(temperature, 0.5),
        anneal_rate=0.0,
        straight_through=straight_through,
    )


def model(latent_dim=6, categories=3, learned=False, **posterior_fields):
    spec = validate(
        {
            "name": "t",
            "model": {
                "latent_dim": latent_dim,
                "encoder": {"hidden": [16]},
                "decoder": {"hidden": [16]},
                "prior": {"kind": "categorical", "categories": categories, "learned": learned},
                "posterior": {"kind": "gumbel", **posterior_fields},
            },
        },
        "test",
    )
    torch.manual_seed(0)
    return build.build_model(spec.model, IMAGE)


def chi_square_bound(df: int, p: float = 1e-4) -> float:
    """The upper 1 - p quantile of chi-square(df), by the Wilson-Hilferty approximation."""
    z = Normal(0.0, 1.0).icdf(torch.tensor(1 - p)).item()
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_as_the_temperature_falls_the_relaxed_draws_are_one_hot_with_softmax_frequencies():
    q = posterior(categories=5, latent_dim=5, temperature=1e-3).train()
    features = torch.randn(1, 5, generator=torch.Generator().manual_seed(0))
    n = 40000
    with torch.no_grad():
        z = q.rsample(features, n, torch.Generator().manual_seed(1)).z.squeeze(1)  # (n, 5)
        probs = torch.softmax(q.distribution(features).logits[0, 0], -1)
    assert (z.max(-1).values > 0.99).float().mean() > 0.99  # nearly one-hot
    observed = torch.bincount(z.argmax(-1), minlength=5).double()
    expected = n * probs.double()
    statistic = ((observed - expected).square() / expected).sum().item()
    assert statistic < chi_square_bound(df=4), (observed, expected)


@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(st.floats(-4, 4), min_size=2, max_size=6),
    temperature=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_concrete_log_density_is_torch_distributions(logits, temperature, seed):
    logits = torch.tensor(logits, dtype=torch.float64)
    relaxed = RelaxedOneHotCategorical(torch.tensor(temperature, dtype=torch.float64), logits=logits)
    torch.manual_seed(seed)
    y = relaxed.sample((8,)).clamp_min(1e-300)
    y = y / y.sum(-1, keepdim=True)
    torch.testing.assert_close(concrete_log_density(y, logits, temperature), relaxed.log_prob(y))


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of two 1-d samples: the largest gap between their CDFs."""
    grid = torch.cat([a, b]).sort().values
    cdf_a = torch.searchsorted(a.sort().values, grid, right=True) / len(a)
    cdf_b = torch.searchsorted(b.sort().values, grid, right=True) / len(b)
    return (cdf_a - cdf_b).abs().max().item()


def test_relaxed_draws_are_concrete_draws():
    """Our relaxed draws and torch's RelaxedOneHotCategorical draws agree in distribution: a two-sample KS
    test on every coordinate at the 0.1 % level (critical value 1.95 sqrt(2 / n)); the posterior is seeded,
    so the test does not depend on which tests ran before it in the process."""
    torch.manual_seed(0)
    q = posterior(categories=3, latent_dim=3, temperature=0.7).train()
    features = torch.randn(1, 5, generator=torch.Generator().manual_seed(2))
    n = 40000
    with torch.no_grad():
        ours = q.rsample(features, n, torch.Generator().manual_seed(3)).z.squeeze(1)
        logits = q.distribution(features).logits[0, 0]
    torch.manual_seed(4)
    theirs = RelaxedOneHotCategorical(torch.tensor(0.7), logits=logits).sample((n,))
    critical = 1.95 * (2 / n) ** 0.5
    for k in range(3):
        assert ks_statistic(ours[:, k], theirs[:, k]) < critical
    # and the test has power: draws at another temperature are told apart
    colder = RelaxedOneHotCategorical(torch.tensor(0.3), logits=logits).sample((n,))
    assert max(ks_statistic(ours[:, k], colder[:, k]) for k in range(3)) > critical


def test_evaluation_draws_are_hard_codes_with_their_categorical_mass():
    q = posterior().eval()
    features = torch.randn(3, 5, generator=torch.Generator().manual_seed(5))
    draw = q.rsample(features, 7, torch.Generator().manual_seed(6))
    blocks = draw.z.unflatten(-1, (2, 4))
    assert ((blocks == 0) | (blocks == 1)).all() and (blocks.sum(-1) == 1).all()
    expected = Categorical(logits=q.distribution(features).logits).log_prob(blocks.argmax(-1)).sum(-1)
    torch.testing.assert_close(draw.log_q, expected)


def test_straight_through_decodes_the_hard_code_with_the_relaxed_gradient():
    q = posterior(straight_through=True, temperature=0.5).train()
    relaxed_q = posterior(straight_through=False, temperature=0.5).train()
    relaxed_q.load_state_dict(q.state_dict())
    features = torch.randn(2, 5, generator=torch.Generator().manual_seed(7))
    weights = torch.randn(8, generator=torch.Generator().manual_seed(8))
    hard = q.rsample(features, generator=torch.Generator().manual_seed(9)).z
    soft = relaxed_q.rsample(features, generator=torch.Generator().manual_seed(9)).z
    assert torch.equal(hard.unflatten(-1, (2, 4)).max(-1).values, torch.ones(2, 2))
    assert torch.equal(hard.unflatten(-1, (2, 4)).argmax(-1), soft.unflatten(-1, (2, 4)).argmax(-1))
    (hard * weights).sum().backward()
    (soft * weights).sum().backward()
    torch.testing.assert_close(q.head.weight.grad, relaxed_q.head.weight.grad)


def test_the_temperature_anneals_with_the_step_to_its_floor():
    q = GumbelPosterior(
        in_features=2, latent_dim=4, categories=2, temperature=1.0, min_temperature=0.5, anneal_rate=1e-4,
        straight_through=False,
    )  # fmt: skip
    q.set_step(1000)
    assert q.temperature().item() == pytest.approx(math.exp(-0.1))
    q.set_step(torch.tensor(10**5))  # a device scalar, as a CUDA graph hands it over
    assert q.temperature().item() == 0.5


def test_the_categorical_kl_is_torch_distributions():
    prior = CategoricalPrior(latent_dim=12, categories=4, learned=True)
    with torch.no_grad():
        prior.logits.normal_(generator=torch.Generator().manual_seed(10))
    logits = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(11))
    expected = kl_divergence(Categorical(logits=logits), Categorical(logits=prior.logits))
    torch.testing.assert_close(prior.kl(CategoricalCode(logits)), expected.detach())


def test_the_prior_samples_its_categories_and_scores_them():
    prior = CategoricalPrior(latent_dim=6, categories=3, learned=True)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]))
    z = prior.sample(30000, torch.Generator().manual_seed(12))
    frequencies = z.unflatten(-1, (2, 3)).mean(0)
    torch.testing.assert_close(frequencies, torch.softmax(prior.logits.detach(), -1), atol=0.015, rtol=0)
    expected = Categorical(logits=prior.logits).log_prob(z.unflatten(-1, (2, 3)).argmax(-1)).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected.detach())
    mean, std = prior.marginal_moments()
    torch.testing.assert_close(mean, z.mean(0), atol=0.015, rtol=0)
    torch.testing.assert_close(std, z.std(0), atol=0.015, rtol=0)


def exact_log_px(vae, x):
    """log p(x) of the discrete model by enumerating every code: one variable of K categories."""
    k = vae.latent.layout.categories
    codes = torch.eye(k)
    log_px_c = torch.stack([vae.likelihood.log_prob(x, vae.decode_latent(c.expand(len(x), k))) for c in codes])
    return torch.logsumexp(log_px_c + vae.prior.log_prob(codes).unsqueeze(1), dim=0)


def test_the_reported_elbo_and_nll_bound_the_discrete_models_exact_log_likelihood():
    vae = model(latent_dim=3, categories=3, learned=True)
    x = torch.bernoulli(torch.full((4, *IMAGE), 0.3), generator=torch.Generator().manual_seed(13))
    vae.eval()
    with torch.no_grad():
        exact = exact_log_px(vae, x)
        terms = vae.elbo(x, torch.Generator().manual_seed(14))
        # the analytic KL and E_q[log p(x|c)] by enumeration: the discrete model's ELBO, exactly
        q = vae.encode(x)
        codes = torch.eye(3)
        recon = torch.stack([vae.likelihood.log_prob(x, vae.decode_latent(c.expand(4, 3))) for c in codes])
        elbo = (q.mu.T * recon).sum(0) - terms.kl
        log_likelihood = bounds.log_likelihood_iw(vae, x, 2000, torch.Generator().manual_seed(15))
    assert (elbo <= exact + 1e-4).all()
    torch.testing.assert_close(terms.kl, vae.prior.kl(q).sum(-1))
    # L_K = log of the mean of K weights p(x, c) / q(c|x), whose expectation is p(x): within a few of its
    # standard errors (the delta method, its variance by enumerating the codes) of log p(x)
    log_w = recon + vae.prior.log_prob(codes).unsqueeze(1) - q.logits.log_softmax(-1)[:, 0].T  # (codes, B)
    relative_var = (q.mu.T * (2 * (log_w - exact)).exp()).sum(0) - 1
    stderr = (relative_var.clamp_min(0) / 2000).sqrt().double()
    assert ((log_likelihood - exact.double()).abs() < 5 * stderr + 1e-4).all(), (log_likelihood, exact, stderr)


def test_categorical_mutual_information_against_an_enumeration():
    """Two images, one variable of two categories: the estimator's expectation is the exact I(x; c)."""
    log_probs = torch.log(torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]]))
    q = log_probs.exp()[:, 0]
    aggregate = q.mean(0)
    exact = (0.5 * (q * (q.log() - aggregate.log())).sum(-1)).sum().item()
    # each image repeated, so that one draw per image averages over many draws
    assert categorical_mutual_information(log_probs.repeat(2000, 1, 1)) == pytest.approx(exact, abs=0.02)


def test_latent_statistics_are_per_variable_and_sum_to_the_kl():
    vae = model(latent_dim=6, categories=3)
    x = torch.bernoulli(torch.rand(50, *IMAGE), generator=torch.Generator().manual_seed(15))
    moments = code_moments(vae, x, 25)
    q = vae.encode(x)
    torch.testing.assert_close(moments.mean, q.mu)  # the code's exact means: its category probabilities
    stats = latent_stats(vae, moments.mean, moments.logvar, moments.noise)
    assert len(stats.kl_per_dim) == len(stats.active) == 2  # two variables
    kl = vae.prior.kl(q).mean(0).double()
    torch.testing.assert_close(torch.tensor(stats.kl_per_dim, dtype=torch.float64), kl)
    spread = q.mu.double().var(0).unflatten(-1, (2, 3)).sum(-1)
    assert stats.active == (spread > 0.01).tolist()
    assert 0 <= stats.mutual_information <= math.log(50)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"prior": {"kind": "standard"}, "posterior": {"kind": "gumbel"}}, "over real latents"),
        ({"prior": {"kind": "categorical"}, "posterior": {"kind": "gaussian"}}, "over categorical latents"),
        ({"latent_dim": 25, "prior": {"kind": "categorical"}, "posterior": {"kind": "gumbel"}}, "multiple of 10"),
    ],
)
def test_the_spec_refuses_a_categorical_latent_it_cannot_build(changes, match):
    with pytest.raises(SpecError, match=match) as error:
        validate({"name": "t", "model": changes}, "test")
    assert "\n" not in str(error.value)


def test_a_gumbel_run_trains_evaluates_and_draws_only_the_figures_that_apply(tmp_path, synthetic_root):
    spec = spec_for(
        synthetic_root,
        model__latent_dim=6,
        model__prior={"kind": "categorical", "categories": 3},
        model__posterior={"kind": "gumbel", "anneal_rate": 0.01},
        kl={"kind": "constant"},
    )
    metrics = runner.run(spec, tmp_path)
    assert metrics.kl_estimate == "closed-form" and len(metrics.kl_per_dim) == 2
    assert sum(metrics.kl_per_dim) <= 2 * math.log(3) + 1e-6  # a uniform prior's KL is at most log K per variable
    assert math.isfinite(metrics.test_nll_iw) and metrics.test_nll_iw <= metrics.test_neg_elbo + 1e-3
    drawn = {p.stem for p in (tmp_path / "tiny" / "figures").glob("*.png")}
    assert drawn == set(figures.applicable_figures(build.build_model(spec.model, IMAGE)))
    assert not drawn & {"traversal", "interpolation", "latent_scatter", "manifold"}
    assert {"reconstructions", "samples", "kl_per_dim"} <= drawn
    report = (tmp_path / "tiny" / "report.md").read_text()
    assert "categorical variables of 3 categories" in report
