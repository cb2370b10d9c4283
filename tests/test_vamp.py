"""The VampPrior against independent references: its density against torch.distributions built from
the encoder's own outputs at the pseudo-inputs, the ELBO's one-sample KL against a 200k-sample
estimate, its draws against the mixture's CDF. Its only parameters are the pseudo-inputs, it holds no
other part (its density is given the posterior at them, by the model's `latent`), it follows the model
(through the gradient, deepcopy and the state dict), and a VAE built from a spec with it trains and
evaluates."""

import copy
import math

import pytest
import torch
from torch import distributions as dist

from tests.conftest import tiny_spec
from vaezoo.evaluate.bounds import log_likelihood_iw
from vaezoo.model.vae import VAE
from vaezoo.parts import vamp
from vaezoo.runs import runner, saved_runs
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)
F64 = torch.float64


def vamp_model(seed: int = 0, components: int = 5, latent_dim: int = 3, hidden: int = 16, spread: bool = True) -> VAE:
    """A small VAE with the vamp prior, from a spec; `spread` draws the pseudo-inputs uniformly
    (a few pixels beyond [0, 1], to exercise the clamp) instead of the paper's near-blank start,
    so that the mixture's components differ."""
    model_spec = {
        "latent_dim": latent_dim,
        "encoder": {"kind": "mlp", "hidden": [hidden]},
        "decoder": {"kind": "mlp", "hidden": [hidden]},
        "prior": {"kind": "vamp", "pseudo_inputs": components},
    }
    spec = validate({"name": "t", "model": model_spec}, "test")
    torch.manual_seed(seed)
    model = build_model(spec.model, IMAGE)
    if spread:
        with torch.no_grad():
            model.prior.raw_pseudo_inputs.uniform_(-0.1, 1.1)
    return model


def density(model: VAE):
    """p(z) of the model: the VampPrior given the posterior at its pseudo-inputs."""
    return model.latent.density()


def reference_components(model: VAE) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) of q(z | u_k), (K, D) each, straight from the encoder and the posterior's head."""
    pseudo_inputs = model.prior.raw_pseudo_inputs.clamp(0.0, 1.0)
    mu, logvar = model.posterior.head(model.encoder(pseudo_inputs)).chunk(2, dim=-1)
    return mu, (0.5 * logvar).exp()


def reference_mixture(model: VAE) -> dist.MixtureSameFamily:
    mu, sigma = reference_components(model)
    uniform = dist.Categorical(logits=torch.zeros(len(mu), dtype=mu.dtype))
    return dist.MixtureSameFamily(uniform, dist.Independent(dist.Normal(mu, sigma), 1))


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, *IMAGE), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("leading", [(4,), (6, 4)], ids=["B", "S-B"])
def test_log_prob_and_marginals_equal_torch_distributions(seed, leading):
    model = vamp_model(seed).double()
    z = 2 * torch.randn(*leading, 3, dtype=F64, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(density(model).log_prob(z), reference_mixture(model).log_prob(z))
    mu, sigma = reference_components(model)
    per_dimension = dist.MixtureSameFamily(
        dist.Categorical(logits=torch.zeros(3, len(mu), dtype=F64)), dist.Normal(mu.T, sigma.T)
    )
    torch.testing.assert_close(density(model).marginal_log_prob(z), per_dimension.log_prob(z))


def test_blocks_of_rows_do_not_change_the_densities(monkeypatch):
    model = vamp_model().double()
    z = torch.randn(6, 4, 3, dtype=F64)
    whole = density(model).log_prob(z), density(model).marginal_log_prob(z)
    monkeypatch.setattr(vamp, "BLOCK_ELEMENTS", 7)  # one row of z per block
    torch.testing.assert_close(density(model).log_prob(z), whole[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(density(model).marginal_log_prob(z), whole[1], rtol=0, atol=1e-12)


def test_float32_log_prob_stays_accurate_near_narrow_components():
    """Components far from 0 with std 0.02: a float32 quadratic form would lose about 0.01 nats."""
    model = vamp_model()
    with torch.no_grad():
        model.posterior.head.bias[:3] += 5.0
        model.posterior.head.bias[3:] -= 8.0
    mu, _ = reference_components(model)
    z = (mu[:, None] + 0.02 * torch.randn(5, 4, 3)).detach()  # near every component
    exact = reference_mixture(copy.deepcopy(model).double()).log_prob(z.double())
    assert density(model).log_prob(z).dtype == torch.float32
    torch.testing.assert_close(density(model).log_prob(z).double(), exact, rtol=0, atol=2e-3)


@pytest.mark.parametrize("seed", range(3))
def test_the_elbos_monte_carlo_kl_is_unbiased(seed):
    """The ELBO's one-sample KL, log q(z|x) - log p(z), averaged over 20k draws, agrees within five
    standard errors with a 200k-sample estimate from torch.distributions; the ELBO's own term is the
    reference's at the ELBO's z."""
    model = vamp_model(seed).double()
    x = images(2, seed).double()
    with torch.no_grad():
        draw = model.latent.draw(model.encoder(x), 20_000, torch.Generator().manual_seed(seed))
        estimates, per_dimension = model.latent.kl_terms(draw)  # what the ELBO uses, (20k, 2)
        mu, logvar = model.posterior.head(model.encoder(x)).chunk(2, dim=-1)
        q = dist.Independent(dist.Normal(mu, (0.5 * logvar).exp()), 1)
        prior = reference_mixture(model)
        torch.manual_seed(seed)
        z = q.sample((200_000,))
        precise = (q.log_prob(z) - prior.log_prob(z)).mean(0)
        terms = model.elbo(x, generator=torch.Generator().manual_seed(seed))
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
        z_elbo = mu + (0.5 * logvar).exp() * eps
    assert per_dimension is None and terms.kl_per_dim is None
    torch.testing.assert_close(terms.kl, q.log_prob(z_elbo) - prior.log_prob(z_elbo))
    standard_error = estimates.std(0) / math.sqrt(len(estimates))
    assert (precise > 0).all()  # a KL
    assert ((estimates.mean(0) - precise).abs() < 5 * standard_error).all()


def test_the_priors_parameters_are_the_pseudo_inputs_alone():
    model = vamp_model(components=7, spread=False)
    prior = model.prior
    assert [name for name, _ in prior.named_parameters()] == ["raw_pseudo_inputs"]
    assert prior.raw_pseudo_inputs.shape == (7, *IMAGE)
    assert list(prior.modules()) == [prior]  # the encoder is not a submodule of the prior
    assert [key for key in model.state_dict() if key.startswith("prior.")] == ["prior.raw_pseudo_inputs"]
    per_part = sum(p.numel() for part in model.children() for p in part.parameters())
    assert sum(p.numel() for p in model.parameters()) == per_part  # no parameter reachable twice
    # the paper's start: nearly blank images N(0.05, 0.01^2), inside the clamp
    assert abs(prior.raw_pseudo_inputs.mean().item() - 0.05) < 0.001
    assert abs(prior.raw_pseudo_inputs.std().item() - 0.01) < 0.001


def test_gradients_reach_the_pseudo_inputs_and_the_encoder_through_the_kl():
    model = vamp_model()
    model.elbo(images(4), generator=torch.Generator().manual_seed(0)).kl.sum().backward()
    assert model.prior.raw_pseudo_inputs.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    # log p(z) at a fixed z alone: the density reads the live encoder and posterior, not a snapshot
    density(model).log_prob(torch.randn(4, 3)).sum().backward()
    for part in (model.encoder, model.posterior, model.prior):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_the_prior_alone_is_no_density_and_says_how_to_get_one():
    prior = vamp_model().prior
    for member in (lambda: prior.log_prob(torch.randn(2, 3)), lambda: prior.sample(2), prior.marginal_moments):
        with pytest.raises(TypeError, match="given"):
            member()


def test_a_deepcopy_reads_the_copys_encoder():
    model = vamp_model()
    twin = copy.deepcopy(model)
    z = torch.randn(4, 3)
    with torch.no_grad():
        before = density(model).log_prob(z)
        torch.testing.assert_close(density(twin).log_prob(z), before, rtol=0, atol=0)
        for p in twin.encoder.parameters():
            p.add_(0.3 * torch.randn_like(p))
        assert not torch.allclose(density(twin).log_prob(z), before)
        torch.testing.assert_close(density(model).log_prob(z), before, rtol=0, atol=0)


def test_the_pseudo_inputs_travel_in_the_state_dict():
    trained, fresh = vamp_model(seed=0), vamp_model(seed=1)
    z = torch.randn(4, 3)
    fresh.load_state_dict(trained.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(density(fresh).log_prob(z), density(trained).log_prob(z), rtol=0, atol=0)


def test_samples_follow_the_mixture_and_its_moments():
    model = vamp_model().double()
    prior, n = density(model), 200_000
    z = prior.sample(n, torch.Generator().manual_seed(0))
    assert z.shape == (n, 3)
    torch.testing.assert_close(prior.sample(n, torch.Generator().manual_seed(0)), z, rtol=0, atol=0)  # seeded
    mean, std = prior.marginal_moments()
    assert mean.shape == std.shape == (3,)
    mu, sigma = reference_components(model)
    with torch.no_grad():
        torch.testing.assert_close(mean, mu.mean(0))
        torch.testing.assert_close(std, ((sigma.square() + mu.square()).mean(0) - mu.mean(0).square()).sqrt())
        torch.testing.assert_close(z.mean(0), mean, rtol=0, atol=5 * std.max().item() / math.sqrt(n))
        torch.testing.assert_close(z.std(0), std, rtol=0.02, atol=0)
        # each dimension's empirical CDF against the mixture's: (1/K) sum_k Phi((t - mu_kd) / sigma_kd)
        t = torch.linspace(-3, 3, 13, dtype=F64).view(-1, 1, 1)
        cdf = dist.Normal(mu, sigma).cdf(t).mean(1)  # (T, D)
        empirical = (z <= t).double().mean(1)
    assert (empirical - cdf).abs().max() < 0.006  # the empirical CDF's standard error is below 0.0012


def test_a_vae_with_the_vamp_prior_trains_and_has_a_finite_importance_weighted_bound():
    model = vamp_model(components=8, latent_dim=4, hidden=32, spread=False)
    x = images(32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(25):
        loss = model.elbo(x, generator=generator).loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 10  # nats per image
    bound = log_likelihood_iw(model, x[:4], samples=64, generator=torch.Generator().manual_seed(1), chunk=16)
    assert bound.shape == (4,) and torch.isfinite(bound).all() and (bound < 0).all()


def test_a_run_with_the_vamp_prior_evaluates_and_reloads(tmp_path, synthetic_root):
    spec = validate(tiny_spec(synthetic_root, model__prior={"kind": "vamp", "pseudo_inputs": 5}), "test")
    metrics = runner.run(spec, tmp_path, figures=False)
    assert metrics.kl_estimate == "monte-carlo"
    assert math.isfinite(metrics.test_nll_iw) and all(math.isfinite(v) for v in metrics.kl_per_dim)
    loaded = saved_runs.load_run(tmp_path / "tiny", "cpu").model
    assert torch.isfinite(density(loaded).log_prob(torch.randn(3, 4))).all()
