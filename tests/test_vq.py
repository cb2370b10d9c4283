"""The VQ-VAE (`vaezoo.parts.vq`, `vaezoo.parts.codebook`, `vaezoo.parts.made`), each property against an
independent computation: brute-force nearest vectors, a hand-computed EMA step, the autoregressive mass
by enumerating every code, its sampler by a chi-square test, and the bounds at the encoder's codes."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_gumbel import chi_square_bound
from tests.test_train import spec_for
from vaezoo.cli.main import main
from vaezoo.core.errors import SpecError
from vaezoo.evaluate import bounds
from vaezoo.evaluate.console import metrics_table
from vaezoo.evaluate.latents import code_moments, code_perplexity, latent_stats
from vaezoo.outputs import figures
from vaezoo.parts.codebook import CodebookPrior
from vaezoo.parts.objectives import OBJECTIVES
from vaezoo.parts.vq import VQPosterior
from vaezoo.runs import runner
from vaezoo.spec import build
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)


def prior(positions=3, codes=3, code_dim=2, hidden=16, decay=0.9, eps=1e-5, seed=0, dtype=torch.float64):
    """A codebook prior with a random codebook (marked initialized) and a random MADE, so its mass is not uniform."""
    torch.manual_seed(seed)
    p = CodebookPrior(
        latent_dim=positions * code_dim, codes=codes, code_dim=code_dim, decay=decay, eps=eps, hidden=hidden
    ).to(dtype)
    with torch.no_grad():
        p.codebook.normal_()
        p.embed_sum.copy_(p.codebook)
        p.initialized.fill_(True)
        for param in p.made.parameters():
            param.normal_()
    return p


def model(latent_dim=4, codes=4, code_dim=2, commitment=0.25):
    spec = validate(
        {
            "name": "t",
            "model": {
                "latent_dim": latent_dim,
                "encoder": {"hidden": [16]},
                "decoder": {"hidden": [16]},
                "prior": {"kind": "codebook", "codes": codes, "code_dim": code_dim, "hidden": 8},
                "posterior": {"kind": "vq", "commitment": commitment},
            },
        },
        "test",
    )
    torch.manual_seed(0)
    return build.build_model(spec.model, IMAGE)


def images(n=6, seed=0):
    return torch.bernoulli(torch.full((n, *IMAGE), 0.3), generator=torch.Generator().manual_seed(seed))


def brute_force_nearest(z, codebook, code_dim):
    """The index of the nearest codebook vector of each block, by every distance written out."""
    blocks = z.unflatten(-1, (-1, code_dim))
    return ((blocks.unsqueeze(-2) - codebook).square().sum(-1)).argmin(-1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), codes=st.integers(2, 9), code_dim=st.integers(1, 4))
def test_quantization_picks_the_nearest_codebook_vector(seed, codes, code_dim):
    p = prior(codes=codes, code_dim=code_dim, seed=seed % 1000)
    z_e = torch.randn(5, 3 * code_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    index, vectors = p.quantize(z_e, update=False)
    expected = brute_force_nearest(z_e, p.codebook, code_dim)
    assert torch.equal(index, expected)
    torch.testing.assert_close(vectors, p.codebook[expected].flatten(-2), rtol=0, atol=0)
    assert torch.equal(p.nearest(vectors), expected)  # a latent of codebook vectors reads back its codes exactly


def test_the_straight_through_gradient_reaches_z_e_as_the_decoders_gradient_at_z():
    q, p = VQPosterior(in_features=5, latent_dim=6, commitment=0.25).double(), prior()
    features = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    weights = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    draw = q.eval().rsample(features, prior=p)
    _, vectors = p.quantize(q.head(features), update=False)
    torch.testing.assert_close(draw.z, vectors, rtol=0, atol=1e-12)  # the decoder reads the codebook vectors
    (grad_z,) = torch.autograd.grad((draw.z * weights).sum(), features)
    (grad_e,) = torch.autograd.grad((q.head(features) * weights).sum(), features)  # the same upstream, at z_e
    torch.testing.assert_close(grad_z, grad_e, rtol=0, atol=0)
    assert torch.equal(draw.log_q, torch.zeros(4, dtype=torch.float64))


def smoothed(size, eps):
    total = size.sum()
    return (size + eps) / (total + len(size) * eps) * total


def test_the_ema_update_is_the_hand_computed_one():
    """Two training quantizations of a toy batch: the first refreshes the codebook from the moving averages
    it started with, then takes the batch's counts and sums into them; the second's refresh reads those."""
    gamma, eps = 0.9, 1e-3
    p = prior(positions=2, codes=3, code_dim=2, decay=gamma, eps=eps)
    with torch.no_grad():
        p.cluster_size.copy_(torch.tensor([2.0, 0.5, 0.0], dtype=torch.float64))
        p.embed_sum.copy_(torch.tensor([[2.0, 2.0], [0.0, -0.5], [0.0, 0.0]], dtype=torch.float64))
    size0, sum0 = p.cluster_size.clone(), p.embed_sum.clone()
    z_e = torch.tensor([[1.1, 0.9, 0.1, -0.8], [0.2, -1.1, 1.0, 1.2]], dtype=torch.float64)
    index, _ = p.quantize(z_e, update=True)
    refreshed = sum0 / smoothed(size0, eps).unsqueeze(-1)
    torch.testing.assert_close(p.codebook, refreshed)  # the codebook that chose the codes
    assert torch.equal(index, brute_force_nearest(z_e, refreshed, 2))
    blocks, flat_index = z_e.reshape(-1, 2), index.reshape(-1)
    counts = torch.stack([(flat_index == k).sum() for k in range(3)]).double()
    sums = torch.stack([blocks[flat_index == k].sum(0) for k in range(3)])
    size1, sum1 = gamma * size0 + (1 - gamma) * counts, gamma * sum0 + (1 - gamma) * sums
    torch.testing.assert_close(p.cluster_size, size1)
    torch.testing.assert_close(p.embed_sum, sum1)
    p.quantize(z_e, update=True)
    torch.testing.assert_close(p.codebook, sum1 / smoothed(size1, eps).unsqueeze(-1))
    p.quantize(z_e, update=False)  # evaluation moves nothing
    torch.testing.assert_close(p.cluster_size, gamma * size1 + (1 - gamma) * counts)


def test_the_first_training_batch_initializes_the_codebook_with_its_own_vectors():
    p = CodebookPrior(latent_dim=4, codes=3, code_dim=2, decay=0.99, eps=1e-5, hidden=8)
    assert not p.initialized
    z_e = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    p.quantize(z_e, update=True)
    rows = z_e.reshape(-1, 2)
    assert all(any(torch.allclose(vector, row, atol=1e-6) for row in rows) for vector in p.codebook)
    assert len(torch.unique(p.codebook, dim=0)) == 3 and bool(p.initialized)


def test_the_codebook_buffers_are_in_the_checkpoint_and_load_back():
    vae = model()
    vae.train()
    vae.elbo(images())
    vae.elbo(images(seed=1))
    state = vae.state_dict()
    assert {"prior.codebook", "prior.cluster_size", "prior.embed_sum", "prior.initialized"} <= set(state)
    fresh = model()
    assert not torch.equal(fresh.prior.codebook, vae.prior.codebook)
    fresh.load_state_dict(state)
    for name in ("codebook", "cluster_size", "embed_sum", "initialized"):
        assert torch.equal(getattr(fresh.prior, name), getattr(vae.prior, name))
    vae.eval(), fresh.eval()
    torch.testing.assert_close(fresh.encode(images()).mu, vae.encode(images()).mu, rtol=0, atol=0)


def every_code(codes, positions):
    return torch.tensor(list(itertools.product(range(codes), repeat=positions)))


def test_the_autoregressive_mass_sums_to_one_over_every_code():
    p = prior(positions=3, codes=3)
    with torch.no_grad():
        mass = p.made.log_mass(every_code(3, 3)).exp()
    assert mass.sum().item() == pytest.approx(1.0, abs=1e-10)
    assert mass.max() > 3 * mass.min()  # a random MADE, not the uniform mass it starts at


def test_the_mass_is_autoregressive():
    """Changing c_n leaves p(c_m | c_<m) for every m <= n alone, and (the power check) moves a later one."""
    p = prior(positions=4, codes=3)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for n in range(4):
            index = torch.randint(0, 3, (20, 4), generator=generator)
            changed = index.clone()
            changed[:, n] = (index[:, n] + 1) % 3
            before, after = p.made.log_probs(index), p.made.log_probs(changed)
            torch.testing.assert_close(after[:, : n + 1], before[:, : n + 1], rtol=0, atol=0)
            if n < 3:
                assert (after[:, n + 1 :] - before[:, n + 1 :]).abs().max() > 1e-3


def test_the_prior_samples_its_mass_and_scores_its_samples():
    p = prior(positions=3, codes=3)
    n = 30000
    z = p.sample(n, torch.Generator().manual_seed(5))
    index = p.nearest(z)
    codes = every_code(3, 3)
    with torch.no_grad():
        mass = p.made.log_mass(codes).exp()
        torch.testing.assert_close(p.log_prob(z), p.made.log_mass(index))
    observed = torch.bincount((index * torch.tensor([9, 3, 1])).sum(-1), minlength=27).double()

    def statistic(probs):
        return ((observed - n * probs).square() / (n * probs)).sum().item()

    assert statistic(mass) < chi_square_bound(df=26)
    assert statistic(torch.full((27,), 1 / 27, dtype=torch.float64)) > chi_square_bound(df=26)  # it has power
    assert statistic(p.made.log_mass(codes.flip(-1)).exp().detach()) > chi_square_bound(df=26)  # order matters


def test_the_elbo_is_the_codes_bound_and_importance_sampling_equals_it():
    vae = model()
    x = images()
    vae.train()
    vae.elbo(x)  # one training step's codebook: initialized from this batch
    vae.eval()
    with torch.no_grad():
        terms = vae.elbo(x, torch.Generator().manual_seed(6))
        z_e = vae.posterior.head(vae.encoder(x))
        codes = brute_force_nearest(z_e, vae.prior.codebook, 2)
        vectors = vae.prior.codebook[codes].flatten(-2)
        log_px = vae.likelihood.log_prob(x, vae.decode_latent(vectors))
        log_pc = vae.prior.made.log_mass(codes)
        iw = bounds.log_likelihood_iw(vae, x, 7, torch.Generator().manual_seed(7))
    torch.testing.assert_close(terms.recon_nll, -log_px)
    torch.testing.assert_close(terms.kl, -log_pc)
    torch.testing.assert_close(terms.neg_elbo, -log_px - log_pc)
    torch.testing.assert_close(-iw, terms.neg_elbo.double(), rtol=0, atol=1e-4)  # every weight is the same
    assert vae.kl_estimate.value == "monte-carlo"


def test_the_commitment_penalty_is_in_the_loss_but_not_in_the_elbo():
    vae = model(commitment=0.5)
    x = images()
    vae.train()
    terms = vae.elbo(x)
    z_e = vae.posterior.head(vae.encoder(x)).detach()
    vectors = vae.prior.codebook[brute_force_nearest(z_e, vae.prior.codebook, 2)].flatten(-2)
    penalty = 0.5 * (z_e - vectors).square().sum(-1)
    torch.testing.assert_close(terms.penalty, penalty)
    assert (penalty > 0).all()
    torch.testing.assert_close(terms.neg_elbo, terms.recon_nll + terms.kl)
    torch.testing.assert_close(terms.loss, terms.neg_elbo + penalty)
    spec = validate({"name": "t", "model": {"prior": {"kind": "codebook"}, "posterior": {"kind": "vq"}}}, "t")
    weighting = build.build_kl_weighting(spec)
    trained = build.build_objective(spec, 10).terms(vae, x, 0.5, weighting)
    torch.testing.assert_close(trained.loss, trained.recon_nll + 0.5 * trained.kl + trained.penalty)
    # the codebook is no parameter: the loss's gradient reaches the encoder, the head and the MADE only
    trained.loss.mean().backward()
    assert vae.posterior.head.weight.grad.abs().sum() > 0 and vae.prior.made.hidden.weight.grad is not None
    assert not vae.prior.codebook.requires_grad


@pytest.mark.parametrize("objective", [name for name in OBJECTIVES.names() if not OBJECTIVES.get(name).adds_penalty])
def test_the_spec_refuses_an_objective_that_drops_the_commitment_loss(objective):
    model_spec = {"prior": {"kind": "codebook"}, "posterior": {"kind": "vq"}}
    with pytest.raises(SpecError, match=f"objective {objective}") as error:
        validate({"name": "t", "model": model_spec, "objective": {"kind": objective}}, "test")
    assert "\n" not in str(error.value)
    if objective == "iwae":
        assert "commitment loss" in str(error.value) and "elbo" in str(error.value)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"prior": {"kind": "codebook"}, "posterior": {"kind": "gaussian"}}, "over codebook latents"),
        ({"prior": {"kind": "standard"}, "posterior": {"kind": "vq"}}, "over real latents"),
        ({"latent_dim": 10, "prior": {"kind": "codebook", "code_dim": 4}, "posterior": {"kind": "vq"}}, "multiple"),
    ],
)
def test_the_spec_refuses_a_codebook_latent_it_cannot_build(changes, match):
    with pytest.raises(SpecError, match=match) as error:
        validate({"name": "t", "model": changes}, "test")
    assert "\n" not in str(error.value)


def test_code_perplexity_and_latent_statistics_read_the_codes():
    vae = model(latent_dim=4, codes=4, code_dim=2)
    p = vae.prior
    with torch.no_grad():
        p.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        p.made.output.bias.normal_(generator=torch.Generator().manual_seed(8))
    codes = torch.tensor([[0, 1], [0, 2], [0, 1], [1, 3]])
    vectors = p.codebook[codes].flatten(-2)
    usage = torch.tensor([3, 3, 1, 1], dtype=torch.float64) / 8
    expected = math.exp(-(usage * usage.log()).sum().item())
    assert code_perplexity(vae, vectors) == pytest.approx(expected)
    assert code_perplexity(vae, p.codebook[torch.tensor([[0, 1], [2, 3]])].flatten(-2)) == pytest.approx(4.0)
    stats = latent_stats(vae, vectors, torch.full_like(vectors, -torch.inf))
    per_position = -p.made.log_probs(codes).gather(-1, codes.unsqueeze(-1)).squeeze(-1).double().mean(0)
    torch.testing.assert_close(torch.tensor(stats.kl_per_dim, dtype=torch.float64), per_position.detach())
    assert stats.active == [True, True]
    # a point mass: I(x; c) is the entropy of the four images' codes, three distinct, one twice
    assert stats.mutual_information == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), abs=1e-6)
    moments = code_moments(vae.eval(), images(), 3)  # a VQ model's code moments: its codebook vectors, exactly
    assert moments.mean.shape == (6, 4) and torch.equal(p.vectors(p.nearest(moments.mean)), moments.mean)


def test_a_vq_run_writes_its_perplexity_and_labels_its_nll(tmp_path, synthetic_root):
    spec = spec_for(
        synthetic_root,
        model__latent_dim=8,
        model__prior={"kind": "codebook", "codes": 8, "code_dim": 2, "hidden": 16},
        model__posterior={"kind": "vq"},
        kl={"kind": "constant"},
        train__epochs=1,
    )
    metrics = runner.run(spec, tmp_path)
    run_dir = tmp_path / "tiny"
    assert metrics.kl_estimate == "monte-carlo" and len(metrics.kl_per_dim) == 4  # four code positions
    assert 1.0 <= metrics.code_perplexity <= 8.0
    assert metrics.nll_note is not None and "upper bound" in metrics.nll_note
    assert metrics.test_nll_iw == pytest.approx(metrics.test_neg_elbo, abs=1e-3)
    assert sum(metrics.kl_per_dim) == pytest.approx(metrics.test_kl, rel=1e-4)
    saved = (run_dir / "metrics.json").read_text()
    assert '"code_perplexity"' in saved and "upper bound" in saved
    report = (run_dir / "report.md").read_text()
    assert report.count("upper bound") >= 2 and "code positions" in report
    assert "upper bound" in str(metrics_table("tiny", metrics, run_dir).title)
    drawn = {path.stem for path in (run_dir / "figures").glob("*.png")}
    assert drawn == set(figures.applicable_figures(build.build_model(spec.model, IMAGE)))
    assert {"reconstructions", "samples"} <= drawn and not drawn & {"traversal", "interpolation", "manifold"}
    # the commands that sweep or walk the code refuse in one line (exit 2); sampling works
    out = tmp_path / "drawn.png"
    assert main(["traverse", str(run_dir), "--out", str(out)]) == 2
    assert main(["interpolate", str(run_dir), "--out", str(out)]) == 2 and not out.exists()
    assert main(["sample", str(run_dir), "-n", "4", "--out", str(out)]) == 0 and out.exists()


def test_under_a_bf16_autocast_the_codes_are_still_the_nearest_and_read_back():
    p = prior(positions=4, codes=64, code_dim=2, dtype=torch.float32)
    z_e = torch.randn(500, 8, generator=torch.Generator().manual_seed(9))
    blocks = z_e.unflatten(-1, (4, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        index, vectors = p.quantize(z_e, update=False)
        assert torch.equal(p.nearest(vectors), index)
        # the power: distances from an autocast (bf16) matmul pick other codes than float32 ones do
        rounded = blocks.square().sum(-1, keepdim=True) - 2 * (blocks @ p.codebook.T) + p.codebook.square().sum(-1)
    exact = brute_force_nearest(z_e, p.codebook, 2)
    assert torch.equal(index, exact) and not torch.equal(rounded.argmin(-1), exact)
