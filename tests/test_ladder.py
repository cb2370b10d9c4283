"""Hierarchical latents: a linear-Gaussian two-layer ladder whose exact posterior the top-down
inference can represent, so that log p(x) is known and every estimator must hit it; the prior
against torch.distributions; and the spec's and the runner's handling of a ladder."""

import math

import pytest
import torch
from torch import nn

from tests.linear_gaussian import SHAPE, LinearDecoder
from tests.test_train import spec_for
from vaezoo.core.errors import SpecError
from vaezoo.evaluate import bounds
from vaezoo.model.kl_estimate import KLEstimate
from vaezoo.model.latent import LatentLayout
from vaezoo.model.vae import VAE
from vaezoo.outputs import figures
from vaezoo.parts.ladder import LadderPosterior, LadderPrior
from vaezoo.parts.likelihoods import Gaussian
from vaezoo.runs import runner
from vaezoo.spec import build
from vaezoo.spec.experiment import validate

D = 2  # both layers


def linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def two_layer(sigma: float = 0.5, s1: float = 0.7, kl_estimator: str = "analytic"):
    """p(z2) = N(0, I), p(z1|z2) = N(A z2 + a, s1^2 I), p(x|z1) = N(W z1 + b, sigma^2 I), W with orthogonal
    columns and A diagonal: then q(z2|x) and q(z1|z2, x) of the ladder's form are the exact posterior."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, D, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    a_diag, a = torch.tensor([1.5, -0.4], dtype=torch.float64), torch.tensor([0.3, -0.2], dtype=torch.float64)
    zeros = torch.zeros(D, D, dtype=torch.float64)

    prior = LadderPrior(latent_dim=D, lower=[D], hidden=4, activation="tanh").double()
    log_s1 = torch.full((D,), 2 * math.log(s1), dtype=torch.float64)
    prior.conditionals[0] = linear(torch.cat([torch.diag(a_diag), zeros]), torch.cat([a, log_s1]))
    posterior = LadderPosterior(in_features=6, layers=[D, D], hidden=4, activation="tanh", combine="precision").double()
    likelihood = Gaussian(image_shape=SHAPE, sigma="fixed", value=sigma, per_pixel=False, min_sigma=1e-3).double()
    model = VAE(nn.Flatten(), posterior, prior, LinearDecoder(w, b), likelihood, LatentLayout((D, D)), kl_estimator)

    # bottom-up estimate of z1 from x alone: the likelihood read as a Gaussian in z1
    w2 = (w * w).sum(0)
    to_z1 = (w / w2).T  # (W^T W)^-1 W^T
    bottom_logvar = torch.log(sigma**2 / w2)
    posterior.heads[0] = linear(
        torch.cat([to_z1, torch.zeros(D, 6, dtype=torch.float64)]), torch.cat([-to_z1 @ b, bottom_logvar])
    )
    # the top's exact posterior p(z2|x): x|z2 ~ N(W A z2 + W a + b, s1^2 W W^T + sigma^2 I)
    wa = w @ torch.diag(a_diag)
    cov_x_z2 = s1**2 * w @ w.T + sigma**2 * torch.eye(6, dtype=torch.float64)
    precision = torch.linalg.inv(cov_x_z2)
    cov = torch.linalg.inv(torch.eye(D, dtype=torch.float64) + wa.T @ precision @ wa)
    assert torch.allclose(cov, torch.diag(torch.diag(cov)), atol=1e-12)  # diagonal, so representable
    gain = cov @ wa.T @ precision
    posterior.paths[1] = nn.Identity()
    top_logvar = torch.log(torch.diag(cov))
    posterior.heads[1] = linear(
        torch.cat([gain, torch.zeros(D, 6, dtype=torch.float64)]), torch.cat([-gain @ (w @ a + b), top_logvar])
    )

    marginal = torch.distributions.MultivariateNormal(
        w @ a + b, wa @ wa.T + s1**2 * w @ w.T + sigma**2 * torch.eye(6, dtype=torch.float64)
    )
    x = marginal.sample((40,)).reshape(40, *SHAPE)
    return model, x, marginal.log_prob(x.flatten(1))


@pytest.mark.parametrize("samples", [1, 10, 100])
def test_importance_sampling_is_exact_with_the_exact_top_down_posterior(samples):
    model, x, exact = two_layer()
    estimate = bounds.log_likelihood_iw(model, x, samples, torch.Generator().manual_seed(1))
    torch.testing.assert_close(estimate, exact, rtol=0, atol=1e-6)  # any inexact term would be off by ~0.1 nats


def test_every_one_sample_elbo_equals_log_px_with_the_exact_posterior():
    """log p(x, z) - log q(z|x) is log p(x) at every z when q is exact: the Monte Carlo KL's ELBO."""
    model, x, exact = two_layer(kl_estimator="monte-carlo")
    terms = model.elbo(x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(-terms.neg_elbo, exact, rtol=0, atol=1e-6)


def test_the_per_layer_elbo_averages_to_log_px_with_the_exact_posterior():
    """The closed form per layer integrates each layer given the draw above it: unbiased, not exact per draw."""
    model, x, exact = two_layer()
    assert model.kl_estimate is KLEstimate.PER_LAYER
    generator = torch.Generator().manual_seed(2)
    draws = torch.stack([-model.elbo(x, generator=generator).neg_elbo for _ in range(400)])
    stderr = draws.std(0) / 20
    assert ((draws.mean(0) - exact).abs() < 5 * stderr + 1e-6).all()


def test_prior_log_prob_matches_torch_distributions_layer_by_layer():
    torch.manual_seed(0)
    prior = LadderPrior(latent_dim=3, lower=[4, 2], hidden=5, activation="tanh").double()
    z = torch.randn(7, 2, 9, dtype=torch.float64)
    z1, z2, z3 = z.split([4, 2, 3], dim=-1)
    normal = torch.distributions.Normal
    expected = normal(0.0, 1.0).log_prob(z3).sum(-1)
    for below, above, layer in ((z2, z3, 1), (z1, z2, 0)):
        mu, logvar = prior.conditionals[layer](above).chunk(2, dim=-1)
        expected = expected + normal(mu, (0.5 * logvar).exp()).log_prob(below).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected)
    assert prior.sample(5, torch.Generator().manual_seed(0)).shape == (5, 9)


@pytest.mark.parametrize("combine", ["residual", "precision"])
def test_log_q_is_the_top_down_product_of_the_layers_gaussians(combine):
    """log q(z|x) = log q(z2|x) + log q(z1|z2, x), each a Gaussian built as `combine` says, against
    torch.distributions; with a zero residual, q(z1|z2, x) is the prior's conditional itself."""
    torch.manual_seed(0)
    prior = LadderPrior(latent_dim=3, lower=[4], hidden=5, activation="tanh").double()
    posterior = LadderPosterior(in_features=6, layers=[4, 3], hidden=5, activation="tanh", combine=combine).double()
    features = torch.randn(7, 6, dtype=torch.float64)
    draw = posterior.rsample(features, samples=2, generator=torch.Generator().manual_seed(0), prior=prior)
    z1, z2 = prior.split(draw.z)
    (path_a, head_a), (path_top, head_top) = _paths(posterior)
    mu_top, logvar_top = head_top(path_top(features)).chunk(2, -1)
    below = path_a(features).expand(2, 7, 6)
    # the residual's shift reads the layer above's draw too (NVAE); the product reads x alone
    mu_a, logvar_a = head_a(torch.cat([below, z2], -1) if combine == "residual" else below).chunk(2, -1)
    mu_p, logvar_p = prior.conditionals[0](z2).chunk(2, dim=-1)
    if combine == "residual":
        mu, var = mu_p + mu_a, (logvar_p + logvar_a).exp()
    else:
        precision = (-logvar_a).exp() + (-logvar_p).exp()
        mu, var = (mu_a * (-logvar_a).exp() + mu_p * (-logvar_p).exp()) / precision, 1 / precision
    normal = torch.distributions.Normal
    expected = normal(mu_top, (0.5 * logvar_top).exp()).log_prob(z2).sum(-1) + normal(mu, var.sqrt()).log_prob(z1).sum(
        -1
    )
    torch.testing.assert_close(draw.log_q, expected)


def test_a_zero_residual_leaves_the_lower_layer_at_the_prior():
    torch.manual_seed(0)
    prior = LadderPrior(latent_dim=3, lower=[4], hidden=5, activation="tanh").double()
    posterior = LadderPosterior(in_features=6, layers=[4, 3], hidden=5, activation="tanh").double()
    nn.init.zeros_(posterior.heads[0].weight)
    nn.init.zeros_(posterior.heads[0].bias)
    draw = posterior.rsample(torch.randn(7, 6, dtype=torch.float64), samples=3, prior=prior)
    _, z2 = prior.split(draw.z)
    top = draw.base
    log_ratio = draw.log_q - prior.log_prob(draw.z)
    torch.testing.assert_close(log_ratio, top.log_prob(z2) - torch.distributions.Normal(0.0, 1.0).log_prob(z2).sum(-1))


def _paths(posterior):
    """(bottom-up path to each layer, its head), the paths composed from the encoder's features."""
    composed = []
    for layer, (path, head) in enumerate(zip(posterior.paths, posterior.heads, strict=True)):
        previous = composed[-1][0] if composed else nn.Identity()
        composed.append((nn.Sequential(previous, path) if layer else path, head))
    return composed


def test_posterior_draws_a_full_stack_and_encodes_the_top_layer():
    spec = validate(
        {
            "name": "x",
            "model": {"latent_dim": 3, "prior": {"kind": "ladder", "lower": [5]}, "posterior": {"kind": "ladder"}},
        },
        "t",
    )
    model = build.build_model(spec.model, (1, 28, 28))
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    draw = model.latent.draw(model.encoder(x), samples=6)
    assert draw.z.shape == (6, 4, 8) and draw.log_q.shape == (6, 4)
    assert model.latent.layout.sizes == (5, 3) and model.latent.code(draw.z).shape == (6, 4, 3)
    assert model.encode(x).mu.shape == (4, 3) and model.decode(torch.zeros(2, 3)).shape == (2, 1, 28, 28)
    assert model.decoder.net[0][0].in_features == 5  # the decoder reads the bottom layer only


@pytest.mark.parametrize(("prior", "posterior"), [("ladder", "gaussian"), ("standard", "ladder")])
def test_a_ladder_needs_both_its_prior_and_its_posterior(prior, posterior):
    with pytest.raises(SpecError, match="hierarchical") as error:
        validate({"name": "x", "model": {"prior": {"kind": prior}, "posterior": {"kind": posterior}}}, "t")
    assert "\n" not in str(error.value)


def test_a_ladder_run_trains_evaluates_and_draws_every_figure(tmp_path, synthetic_root):
    spec = spec_for(
        synthetic_root, model__prior={"kind": "ladder", "lower": [6], "hidden": 16}, model__posterior={"kind": "ladder"}
    )
    metrics = runner.run(spec, tmp_path)
    assert len(metrics.kl_per_dim) == 4 and metrics.kl_estimate == "closed-form per layer"
    assert math.isfinite(metrics.test_nll_iw) and metrics.test_nll_iw <= metrics.test_neg_elbo + 1.0
    drawn = {p.stem for p in (tmp_path / "tiny" / "figures").glob("*.png")}
    assert drawn == set(figures.applicable_figures(build.build_model(spec.model, (1, 28, 28))))
