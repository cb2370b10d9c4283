"""The flow posteriors (planar, IAF) against independent references: their log-determinants against
autograd Jacobians, IAF's autoregressive structure, q(z|x) as a density that integrates to 1 by
quadrature over the flow's image of a grid, and VAEs that train and evaluate with them."""

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.autograd.functional import jacobian

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import build
from vaezoo.evaluate.bounds import log_likelihood_iw
from vaezoo.parts.flows import FlowPosterior
from vaezoo.parts.posteriors import POSTERIORS
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

KINDS = ["planar", "iaf"]
FEATURES = 6
SMALL = {"planar": {}, "iaf": {"hidden": 12, "context": 5}}
seeds = st.integers(0, 2**31 - 1)
f64 = torch.float64


def random_flow(kind: str, dims: int, steps: int, seed: int, scale: float = 0.5) -> FlowPosterior:
    """A float64 flow posterior with every parameter redrawn N(0, scale^2): far from the near-identity
    initialization, so that the flow is strongly nonlinear (the IAF masks still apply)."""
    torch.manual_seed(seed)
    spec = POSTERIORS.get(kind).Spec(kind=kind, steps=steps, **SMALL[kind])
    posterior = build(POSTERIORS, spec, in_features=FEATURES, latent_dim=dims).double()
    with torch.no_grad():
        for parameter in posterior.parameters():
            parameter.normal_(0.0, scale)
    return posterior


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=12)
@given(seed=seeds, dims=st.integers(2, 5), steps=st.integers(1, 4))
def test_log_q_is_the_base_density_minus_the_log_determinant_of_the_autograd_jacobian(kind, seed, dims, steps):
    posterior = random_flow(kind, dims, steps, seed)
    features = torch.randn(2, FEATURES, dtype=f64, generator=generator(seed + 1))
    draw = posterior.rsample(features, generator=generator(seed))
    # independently: z_0 from the same noise, N(mu, sigma) from torch.distributions, and the Jacobian
    # dz_K/dz_0 of the transform, image by image, by autograd
    mu, logvar = posterior.distribution(features)
    z0 = mu + (0.5 * logvar).exp() * torch.randn(2, dims, dtype=f64, generator=generator(seed))
    for i in range(2):
        image = features[i : i + 1]

        def push(z: torch.Tensor, image: torch.Tensor = image) -> torch.Tensor:
            return posterior.transform(z[None], image)[0][0]

        jac = jacobian(push, z0[i])
        # a reference is only as good as its conditioning: skip the rare draws (an IAF sigma near 0 in
        # several steps) whose Jacobian is too ill-conditioned for slogdet to hold 1e-7 in float64
        assume(torch.linalg.cond(jac) < 1e6)
        sign, log_abs_det = torch.linalg.slogdet(jac)
        assert sign > 0  # both flows preserve orientation: every step's determinant is positive
        base = torch.distributions.Normal(mu[i], (0.5 * logvar[i]).exp()).log_prob(z0[i]).sum()
        torch.testing.assert_close(draw.z[i], push(z0[i]))
        torch.testing.assert_close(draw.log_q[i], base - log_abs_det)


@settings(deadline=None, max_examples=15)
@given(seed=seeds, dims=st.integers(1, 6))
def test_each_iaf_step_has_a_triangular_jacobian_in_its_order_and_the_steps_together_a_dense_one(seed, dims):
    posterior = random_flow("iaf", dims, 2, seed)
    h = torch.randn(5, dtype=f64, generator=generator(seed + 1))
    z = torch.randn(dims, dtype=f64, generator=generator(seed))
    for t, step in enumerate(posterior.layers):
        jac = jacobian(lambda z, step=step: step(z, h)[0], z)
        # step 0 reads the dimensions in order, step 1 in reverse: permute into the step's order
        ordered = jac if t % 2 == 0 else jac.flip(0).flip(1)
        assert (ordered.triu(1) == 0).all()  # output d depends on no input after d, not even slightly
        assert (ordered.diagonal() > 0).all() and (ordered.diagonal() < 1).all()  # sigma
        torch.testing.assert_close(step(z, h)[1], ordered.diagonal().log().sum())
        if dims > 1:
            assert (ordered.tril(-1) != 0).sum() > 0  # and it does depend on the earlier inputs
    full = jacobian(lambda z: posterior.flow(z[None], h[None])[0][0], z)
    assert (full != 0).all()  # reversing the order between steps lets every dimension reach every other


def flow_density(posterior: FlowPosterior, z0: torch.Tensor, features: torch.Tensor):
    """(z_K, q(z_K|x)) at the images of the base points z0 (N, D), as the posterior states them."""
    base, params = posterior.split(features)
    z, log_det = posterior.flow(z0, params)
    return z, (base.log_prob(z0) - log_det).exp()


def total_mass(posterior: FlowPosterior, features: torch.Tensor, n: int) -> float:
    """The integral of q(z|x) over z, by the trapezoid rule on the flow's image of a base grid of n^D
    points (mu +- 9 sigma): dz = |det dz/dz0| dz0 with the Jacobian by central finite differences of
    the mapped grid, not the flow's own log-determinant."""
    mu, logvar = (t[0].detach() for t in posterior.distribution(features))
    dims, sigma = len(mu), (0.5 * logvar).exp()
    axis = torch.linspace(-9, 9, n, dtype=f64)
    grid = torch.stack(torch.meshgrid([axis] * dims, indexing="ij"), -1)  # (n,) * D + (D,)
    steps = [float(s) for s in sigma * (axis[1] - axis[0])]
    with torch.no_grad():
        z, q = flow_density(posterior, mu + sigma * grid.reshape(-1, dims), features)
    z, q = z.reshape(grid.shape), q.reshape(grid.shape[:-1])
    jac = torch.stack([torch.gradient(z, spacing=h, dim=i)[0] for i, h in enumerate(steps)], -1)
    integrand = q * torch.linalg.det(jac)
    for h in reversed(steps):
        integrand = torch.trapezoid(integrand, dx=h, dim=-1)
    return integrand.item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("dims", "n", "scale"), [(1, 1001, 0.5), (2, 151, 0.2)])
# derandomized: some random planar steps come near a zero determinant, whose density spike the grids
# cannot resolve (seed 161400 integrated to 1.27), which says nothing about the log-determinant
@settings(deadline=None, max_examples=4, derandomize=True)
@given(seed=seeds)
def test_q_integrates_to_one(kind, dims, n, scale, seed):
    """A wrong log-determinant (a step left out, u for u_hat, a sigma missed) misses 1 by far more;
    the rule's O(h^2) error is removed by Richardson extrapolation from grids of step h and h/2."""
    posterior = random_flow(kind, dims, 3, seed, scale)
    features = torch.randn(1, FEATURES, dtype=f64, generator=generator(seed + 1))
    coarse, fine = total_mass(posterior, features, n), total_mass(posterior, features, 2 * n - 1)
    assert (4 * fine - coarse) / 3 == pytest.approx(1.0, abs=1e-3)


@settings(deadline=None, max_examples=10)
@given(seed=seeds)
def test_planar_steps_are_invertible_whatever_their_parameters(seed):
    """u_hat keeps w . u_hat > -1: even with large random (u, w, b) the 1-D map is strictly increasing."""
    posterior = random_flow("planar", 1, 4, seed, scale=2.0)
    features = torch.randn(1, FEATURES, dtype=f64, generator=generator(seed + 1))
    with torch.no_grad():
        z, log_det = posterior.transform(torch.linspace(-10, 10, 2001, dtype=f64)[:, None], features)
    assert (z.diff(dim=0) > 0).all() and torch.isfinite(log_det).all()


@pytest.mark.parametrize("kind", KINDS)
def test_rsample_shapes_and_the_base_it_reports(kind):
    torch.manual_seed(0)
    posterior = build(POSTERIORS, POSTERIORS.get(kind).Spec(kind=kind, **SMALL[kind]), in_features=7, latent_dim=3)
    features = torch.randn(4, 7)
    one = posterior.rsample(features, generator=generator(0))
    many = posterior.rsample(features, samples=5, generator=generator(0))
    assert one.z.shape == (4, 3) and one.log_q.shape == (4,)
    assert many.z.shape == (5, 4, 3) and many.log_q.shape == (5, 4)
    assert torch.isfinite(many.log_q).all() and not torch.equal(many.z[0], many.z[1])
    base = posterior.distribution(features)
    assert base.mu.shape == base.logvar.shape == (4, 3)
    torch.testing.assert_close(many.base.mu, base.mu)
    assert not posterior.is_base_gaussian


def spec(kind: str, **changes):
    data = {
        "name": "t",
        "model": {
            "latent_dim": 3,
            "encoder": {"hidden": [32]},
            "decoder": {"hidden": [32]},
            "posterior": {"kind": kind, **SMALL[kind]},
        },
        **changes,
    }
    return validate(data, "test")


@pytest.mark.parametrize("kind", KINDS)
def test_a_flow_vae_trains_and_gives_a_finite_importance_weighted_bound(kind):
    torch.manual_seed(0)
    model = build_model(spec(kind).model, (1, 28, 28))
    assert model.kl_estimate == "monte-carlo"
    x = torch.bernoulli(torch.full((16, 1, 28, 28), 0.3), generator=generator(1))

    def loss() -> torch.Tensor:
        return model.elbo(x, generator=generator(2)).loss.mean()

    before = loss().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(25):
        optimizer.zero_grad()
        step_loss = loss()
        assert torch.isfinite(step_loss)
        step_loss.backward()
        optimizer.step()
    after = loss().item()
    assert math.isfinite(after) and after < before - 50  # nats per image (about 140 in practice)
    bound = log_likelihood_iw(model, x, samples=20, generator=generator(3))
    assert bound.shape == (16,) and torch.isfinite(bound).all()


@pytest.mark.parametrize("kind", KINDS)
def test_the_spec_refuses_a_kl_weighting_that_needs_a_closed_form_kl_per_dimension(kind):
    with pytest.raises(SpecError, match="needs the KL per dimension"):
        spec(kind, kl={"kind": "free_bits"})
