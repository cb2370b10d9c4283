"""M2 (Kingma et al. 2014, `model.classifier` with the `m2` objective): its loss against an explicit
enumeration of the classes from the model's pieces, its bounds against a toy whose log p(x) is exact,
the labelled subset, the spec's refusals, and a run that reports its test error and p(x)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vaezoo
from tests.conftest import tiny_spec
from tests.linear_gaussian import LinearDecoder
from vaezoo.core.errors import SpecError
from vaezoo.evaluate.bounds import elbo_means, importance_weighted_nll, log_likelihood_iw
from vaezoo.evaluate.console import metrics_table
from vaezoo.evaluate.probe import classification_error
from vaezoo.model.latent import LatentLayout
from vaezoo.model.semi_supervised import marginal_elbo
from vaezoo.model.vae import VAE
from vaezoo.parts.kl_weightings import Constant
from vaezoo.parts.likelihoods import Gaussian
from vaezoo.parts.objectives.m2 import M2
from vaezoo.parts.posteriors import GaussianPosterior
from vaezoo.parts.priors import StandardNormal
from vaezoo.spec.build import build_model, build_objective
from vaezoo.spec.experiment import validate

SHAPE = (1, 28, 28)
M2_MODEL = {
    "latent_dim": 3,
    "classes": 10,
    "encoder": {"kind": "mlp", "hidden": [16]},
    "decoder": {"kind": "mlp", "hidden": [16]},
    "classifier": {"kind": "mlp", "hidden": [16], "activation": "softplus"},
}


def m2_spec(**changes):
    return validate({"name": "m2", "model": M2_MODEL, "objective": {"kind": "m2", "labelled": 20}} | changes, "test")


def m2_model(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return build_model(m2_spec().model, SHAPE)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)).bernoulli()


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_the_loss_is_the_enumerated_unlabelled_bound_plus_the_labelled_terms(beta):
    model, x, xl = m2_model(), images(6, 1), images(4, 2)
    yl = torch.tensor([0, 3, 3, 9])
    objective = M2(labelled=4, alpha=0.7, dataset_size=50)
    torch.manual_seed(5)
    terms = objective.terms(model, x, beta, Constant(beta=1.0), labelled_x=xl, labelled_y=yl)
    # by hand: the conditional ELBO of every class from the model's own pieces, drawn in the same order
    torch.manual_seed(5)
    per_class = [model.elbo(x, y=torch.full((6,), c)) for c in range(10)]
    labelled = model.elbo(xl, y=yl)
    q = F.softmax(model.classifier(x), dim=-1)
    recon = sum(q[:, c] * t.recon_nll for c, t in enumerate(per_class))
    kl = sum(q[:, c] * t.kl for c, t in enumerate(per_class)) + (q * q.log()).sum(-1) + math.log(10)
    torch.testing.assert_close(terms.recon_nll, recon)
    torch.testing.assert_close(terms.kl, kl)
    # -U(x) = sum_y q(y|x) L(x, y) - H(q(y|x)), L including -log p(y) = log 10
    neg_u = sum(q[:, c] * (t.recon_nll + t.kl + math.log(10)) for c, t in enumerate(per_class)) + (q * q.log()).sum(-1)
    torch.testing.assert_close(terms.neg_elbo, neg_u)
    labelled_bound = labelled.recon_nll + beta * labelled.kl + math.log(10)
    cross_entropy = F.cross_entropy(model.classifier(xl), yl)
    expected = recon + beta * kl + (4 / 50) * labelled_bound.mean() + 0.7 * cross_entropy
    torch.testing.assert_close(terms.loss, expected)
    assert terms.kl_per_dim is None


def test_the_labelled_terms_are_the_conditional_elbo_and_the_cross_entropy():
    model, xl, yl = m2_model(), images(5, 3), torch.tensor([1, 2, 3, 4, 5])
    torch.manual_seed(2)
    bound = M2.labelled_loss(model, xl, yl, 1.0, Constant(beta=1.0))
    torch.manual_seed(2)
    assert torch.allclose(bound, model.elbo(xl, y=yl).neg_elbo + math.log(10))
    expected = F.cross_entropy(model.classifier(xl), yl, reduction="none")
    torch.testing.assert_close(M2.classification_loss(model, xl, yl), expected)


def test_the_objective_needs_its_labelled_images():
    with pytest.raises(ValueError, match="labelled images"):
        M2(labelled=10, alpha=0.1, dataset_size=10).terms(m2_model(), images(2, 1), 1.0, Constant(beta=1.0))


# a toy M2 whose log p(x) is exact: p(y) uniform over 3 classes, p(z) = N(0, I), p(x|y, z) = N(W z + b_y, s^2 I),
# so p(x|y) = N(b_y, W W^T + s^2 I); W has orthogonal columns, so the exact q(z|x, y) is diagonal
CLASSES, LATENT, PIXELS, SIGMA = 3, 2, 6, 0.5
TOY_SHAPE = (1, 2, 3)


class LinearEncoder(nn.Module):
    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = a

    def forward(self, x):
        return x.flatten(1) @ self.a.T


class ExactClassifier(nn.Module):
    """Logits log p(x|y) (the exact p(y|x) under the uniform p(y)), tempered and shifted to move q away from it."""

    def __init__(self, marginals, temper=1.0, shift=None) -> None:
        super().__init__()
        self.marginals, self.temper, self.shift = marginals, temper, shift

    def forward(self, x):
        logits = torch.stack([m.log_prob(x.flatten(1)) for m in self.marginals], dim=-1) * self.temper
        return logits if self.shift is None else logits + self.shift


def toy(shift=0.0, inflate=1.0, temper=1.0, kl_estimator="analytic"):
    """(model, x, log p(x)): exact posteriors q(z|x, y) and q(y|x) by default; `shift`, `inflate`
    and `temper` move them away."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(PIXELS, LATENT, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    means = 1.5 * torch.randn(PIXELS, CLASSES, generator=g, dtype=torch.float64)  # b_y, one column per class
    m_diag = 1 + (w * w).sum(0) / SIGMA**2
    a = (w / SIGMA**2 / m_diag).T
    posterior = GaussianPosterior(in_features=LATENT + CLASSES, latent_dim=LATENT).double()
    with torch.no_grad():  # [A x, onehot(y)] -> mean A (x - b_y) + shift, log-variance log(inflate / m)
        posterior.head.weight.zero_()
        posterior.head.weight[:LATENT, :LATENT] = torch.eye(LATENT)
        posterior.head.weight[:LATENT, LATENT:] = -a @ means
        posterior.head.bias.copy_(torch.cat([torch.full((LATENT,), shift), torch.log(inflate / m_diag)]))
    covariance = w @ w.T + SIGMA**2 * torch.eye(PIXELS, dtype=torch.float64)
    marginals = [torch.distributions.MultivariateNormal(means[:, c], covariance) for c in range(CLASSES)]
    shifts = None if temper == 1.0 else torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64)
    likelihood = Gaussian(image_shape=TOY_SHAPE, sigma="fixed", value=SIGMA, per_pixel=False, min_sigma=1e-3).double()
    decoder = LinearDecoder(torch.cat([w, means], dim=1), torch.zeros(PIXELS, dtype=torch.float64))
    model = VAE(
        LinearEncoder(a), posterior, StandardNormal(latent_dim=LATENT), decoder, likelihood, LatentLayout((LATENT,)),
        kl_estimator, classes=CLASSES, classifier=ExactClassifier(marginals, temper, shifts),
    )  # fmt: skip
    labels = torch.randint(0, CLASSES, (400,), generator=g)
    noise = torch.distributions.MultivariateNormal(torch.zeros(PIXELS, dtype=torch.float64), covariance)
    x = (means.T[labels] + noise.sample((400,))).unflatten(-1, TOY_SHAPE)
    log_px = torch.logsumexp(torch.stack([m.log_prob(x.flatten(1)) for m in marginals]), dim=0) - math.log(CLASSES)
    return model.eval(), x, log_px


def test_the_bound_is_exact_at_the_true_posteriors():
    # with the exact q(z|x, y) and a one-sample KL, log p(x, z|y) - log q(z|x, y) = log p(x|y) at every z,
    # and with the exact q(y|x) the enumerated bound is log p(x) itself, image by image
    model, x, log_px = toy(kl_estimator="monte-carlo")
    with torch.no_grad():
        bound = -marginal_elbo(model, x, torch.Generator().manual_seed(1)).neg_elbo
    torch.testing.assert_close(bound, log_px)
    estimate = log_likelihood_iw(model, x, 3, torch.Generator().manual_seed(1), chunk=3)
    torch.testing.assert_close(estimate, log_px)


def test_the_bound_lies_below_log_px_and_importance_sampling_closes_the_gap():
    model, x, log_px = toy(shift=0.8, inflate=3.0, temper=0.5)  # q(z|x, y) and q(y|x) both off
    with torch.no_grad():
        gap = log_px + marginal_elbo(model, x, torch.Generator().manual_seed(2)).neg_elbo  # log p(x) - U(x)
    assert gap.mean() > 3 * gap.std() / math.sqrt(len(x))
    errors = {
        k: (log_px - log_likelihood_iw(model, x, k, torch.Generator().manual_seed(3), chunk=500)).mean()
        for k in (1, 2000)
    }
    # the estimate sums every class's K draws, so q(y|x) no longer matters: with K = 2000 it is near exact
    assert abs(errors[2000]) < 0.05 < gap.mean() / 4
    assert errors[1] > errors[2000]


def test_the_dataset_bounds_of_a_semi_supervised_model_ignore_the_labels():
    model, x, log_px = toy(shift=0.3)
    labels = torch.zeros(len(x), dtype=torch.long)
    with torch.no_grad():
        given = elbo_means(model, x, 100, labels)
        none = elbo_means(model, x, 100)
        direct = marginal_elbo(model, x[:100], torch.Generator().manual_seed(0))
    assert given == none
    assert given.neg_elbo > -log_px.mean().item()
    assert direct.recon_nll.mean().item() == pytest.approx(elbo_means(model, x[:100], 100).recon_nll, rel=1e-6)
    iw = importance_weighted_nll(model, x, 50, 100, labels=labels)
    assert iw.nll == pytest.approx(importance_weighted_nll(model, x, 50, 100).nll)
    assert iw.nll == pytest.approx(-log_px.mean().item(), abs=0.05)


def test_the_labelled_subset_is_balanced_of_the_asked_size_and_the_same_for_every_run_seed():
    labels = torch.arange(500) % 10
    labels = labels[torch.randperm(500, generator=torch.Generator().manual_seed(9))]
    chosen = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        chosen.append(M2(labelled=30, alpha=0.1, dataset_size=500).labelled_subset(labels, 10))
    assert torch.equal(chosen[0], chosen[1])
    assert len(chosen[0]) == 30 == len(set(chosen[0].tolist()))
    assert torch.bincount(labels[chosen[0]], minlength=10).tolist() == [3] * 10
    bigger = M2(labelled=50, alpha=0.1, dataset_size=500).labelled_subset(labels, 10)
    assert torch.bincount(labels[bigger], minlength=10).tolist() == [5] * 10


def test_a_labelled_subset_larger_than_a_class_is_a_one_line_spec_error():
    labels = torch.tensor([0] * 3 + [1] * 20)
    with pytest.raises(SpecError, match=r"^objective.labelled 10: the training split has 3 images of class 0") as info:
        M2(labelled=10, alpha=0.1, dataset_size=23).labelled_subset(labels, 2)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objective": {"kind": "m2", "labelled": 25}}, "labelled 25 is not a multiple of the 10 classes"),
        ({"model": {**M2_MODEL, "classifier": None}}, "set model.classifier"),
        ({"model": {**M2_MODEL, "classes": 0}}, "set model.classes"),
        ({"objective": {"kind": "elbo"}}, "model.classifier: objective elbo does not train a classifier"),
        ({"kl": {"kind": "free_bits"}}, "cannot use the KL weighting free_bits"),
    ],
)
def test_a_semi_supervised_spec_that_cannot_work_is_refused_in_one_line(change, message):
    with pytest.raises(SpecError, match=message) as info:
        m2_spec(**change)
    assert "\n" not in str(info.value)


def test_a_model_without_a_classifier_is_not_semi_supervised():
    torch.manual_seed(0)
    plain = build_model(validate({"name": "c", "model": {**M2_MODEL, "classifier": None}}, "t").model, SHAPE)
    assert not plain.semi_supervised and plain.conditional
    with pytest.raises(ValueError, match="no classifier"):
        plain.classify(images(1, 0))
    # the classifier is built last: the other parts draw the initial weights they drew without one
    with_classifier = m2_model()
    for (name, p), (other, q) in zip(plain.named_parameters(), with_classifier.named_parameters(), strict=False):
        assert name == other and torch.equal(p, q)


def test_an_m2_run_reports_its_test_error_and_p_x_and_its_checkpoint_keeps_the_classifier(tmp_path, synthetic_root):
    spec = tiny_spec(synthetic_root, name="m2")
    spec["model"] |= {"classes": 10, "classifier": {"kind": "mlp", "hidden": [16]}}
    spec["objective"] = {"kind": "m2", "labelled": 20}
    spec["kl"] = {"kind": "constant"}
    spec["eval"] |= {"family_metrics": False, "fid_samples": 0}
    run = vaezoo.run(spec, out=tmp_path, progress=False, train__epochs=1, eval__iw_samples=2)
    metrics = vaezoo.core.io.read_json(run.path / "metrics.json")
    assert metrics["likelihood_of"] == "p(x)"
    error = classification_error(run.model, run.data.test_images, run.data.test_labels, 50)
    assert metrics["test_class_error"] == pytest.approx(error) and 0 <= error <= 1
    assert "test classification error of q(y\\|x)" in (run.path / "report.md").read_text()
    assert (run.path / "figures" / "class_samples.png").stat().st_size > 0
    assert "class err." in [str(column.header) for column in metrics_table("m2", run.metrics, run.path).columns]
    loaded = vaezoo.load(run.path)
    for (name, p), (_, q) in zip(
        run.model.classifier.state_dict().items(), loaded.model.classifier.state_dict().items(), strict=True
    ):
        assert torch.equal(p.cpu(), q.cpu()), name
    trained = build_model(validate(spec, "t").model, SHAPE).classifier
    assert not all(
        torch.equal(p, q) for p, q in zip(trained.parameters(), loaded.model.classifier.parameters(), strict=True)
    )


def test_the_built_objective_is_told_the_training_sets_size():
    objective = build_objective(m2_spec(), 1234)
    assert isinstance(objective, M2) and objective.dataset_size == 1234 and objective.labelled == 20
