"""One run's report as a Document (document.py): title, abstract, model and protocol, the ELBO, the
rate-distortion trade-off in this run's numbers, Figure 1 (images, latent space, training curves), the
metrics, observations, the student's discussion, then an appendix with the full derivation and the run's
other figures. Everything comes from the run's saved spec, metrics, history and figures; the writers
(doc_typst, document.to_markdown, html_page) only format it."""

from __future__ import annotations

from pathlib import Path

from vaezoo.evaluate.records import RunMetrics
from vaezoo.outputs import DERIVATION, pdf
from vaezoo.outputs.document import (
    REBUILD,
    Block,
    Bullets,
    Discussion,
    Document,
    Figure,
    Heading,
    MainEnd,
    Math,
    Panel,
    Paragraph,
    Prose,
    Table,
)
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.figures import FIGURES
from vaezoo.outputs.run_tables import RunTables, information_sentence
from vaezoo.parts import OBJECTIVES, POSTERIORS
from vaezoo.spec.experiment import ExperimentSpec

#: Figure 1's rows of (figure kind, sub-caption, share of the text width); a kind the run lacks is left
#: out, and the first of a pair that is found stands in for the other (a 2-D run has a manifold)
MAIN_ROWS = (
    (("reconstructions", "test digits (top) and reconstructions", 0.5), ("samples", "samples from the prior", 0.5)),
    (("latent_scatter", "posterior means by class", 0.5), ("manifold", "decoded 2-D latent grid", 0.5)),
    (("curves", "training curves: loss, reconstruction, KL and beta", 1.0),),
)
#: the run's other figures, in the appendix
MORE = (
    ("traversal", "latent traversals", 0.5),
    ("interpolation", "latent interpolations", 0.5),
    ("kl_per_dim", "KL per latent dimension", 1.0),
)

NETS = {"mlp": "MLP", "conv": "convolutional"}
LIKELIHOODS = {"bernoulli": "Bernoulli", "gaussian": "Gaussian", "discretized_logistic": "discretized logistic"}
BINARIZE = {
    "dynamic": "dynamically binarized (a fresh Bernoulli draw of each training image every time it is used; "
    "the test set binarized once, with a fixed seed)",
    "static": "statically binarized (one fixed Bernoulli draw of every image)",
    "none": "as 8-bit grey levels (not binarized)",
}


def model_name(spec: ExperimentSpec) -> str:
    """What was trained, in a phrase: "an MLP VAE with 2 latent dimensions" and the like."""
    m, objective = spec.model, OBJECTIVES.get(spec.objective.kind)
    kind = POSTERIORS.get(m.posterior.kind).model_title or objective.model_title
    if kind == "VAE":  # the plain ELBO's model, named by what else the spec makes of it
        kind = "conditional VAE" if m.classes else ("β-VAE" if spec.kl.beta != 1 else "VAE")
    encoder, decoder = (NETS.get(kind, kind) for kind in (m.encoder.kind, m.decoder.kind))
    nets = encoder if encoder == decoder else f"{encoder}-encoder, {decoder}-decoder"
    article = "an" if nets[0] in "AEIMOaeio" else "a"
    return f"{article} {nets} {kind} with {m.latent_dim} latent dimension{'s' * (m.latent_dim != 1)}"


def title(spec: ExperimentSpec) -> str:
    data = {"none": "grey-level", "dynamic": "binarized", "static": "binarized"}[spec.data.binarize]
    name = model_name(spec)
    return f"{name[0].upper()}{name[1:]} on {data} {spec.data.dataset.upper()}"


def abstract(spec: ExperimentSpec, m: RunMetrics) -> str:
    return (
        f"We train {md(model_name(spec))} and a {LIKELIHOODS.get(spec.model.likelihood.kind, '')} likelihood for "
        f"{pdf.plural(m.epochs, 'epoch')} on {md(spec.data.dataset.upper())} and evaluate it on the test set. "
        f"The {'reported test' if m.nll_note is not None else 'importance-weighted estimate of the test'} "
        "negative log-likelihood is "
        f"**{m.test_nll_iw:.2f} ± {m.test_nll_iw_stderr:.2f} nats** per image "
        f"(K = {m.iw_samples} samples, ± one standard error over test images); the negative ELBO is "
        f"**{m.test_neg_elbo:.2f} nats**, of which the KL term (the rate) is **{m.test_kl:.2f} nats**, "
        f"and {m.active_units} of {len(m.kl_per_dim)} latent dimensions are active. "
        + (
            f"The bound is {m.elbo_is_gap:.2f} nats looser than the importance-weighted estimate. "
            if m.nll_note is None
            else ""
        )
        + (
            f"The classifier q(y|x) misclassifies **{100 * m.test_class_error:.2f} %** of the test images. "
            if m.test_class_error is not None
            else ""
        )
        + "Every number is per test image, in nats, summed over pixels and latent dimensions. "
        f"What the NLL is: {md(m.nll_kind)}" + (f"; {md(m.nll_note)}." if m.nll_note is not None else ".")
    )


def protocol(spec: ExperimentSpec, metrics: RunMetrics) -> list[Block]:
    counts = (metrics.split.split() or ["?"])[0].split("/") + ["?", "?", "?"]
    n_train, n_val, n_test = (md(count) for count in counts[:3])  # metrics.json may come from anyone
    prose = (
        f"The data are {md(spec.data.dataset.upper())} images, {BINARIZE.get(spec.data.binarize, '')}; "
        f"{n_train} images train, {n_val} more (the last of the training images) are held out for "
        f"validation, and the {n_test} test images are used only for the numbers below. "
        f"Training runs {pdf.plural(spec.train.epochs, 'epoch')} of Adam (batch {spec.train.batch_size}, learning rate "
        f"{spec.train.lr:g}, seed {spec.seed}) on {OBJECTIVES.get(spec.objective.kind).loss_title}"
        f" with the KL weighted by β as set below; test numbers always use β = 1."
    )
    return [Paragraph(prose + " The appendix lists every part of the spec.")]


def derivation(metrics: RunMetrics) -> list[Block]:
    """The ELBO in a few typeset lines: Jensen, the exact gap, the two terms with the Gaussian KL,
    reparameterization."""
    closed = metrics.kl_estimate == "closed-form"
    return [
        Paragraph(
            r"The decoder $p_\theta(x\mid z)$ and the prior $p(z)$ define "
            r"$p_\theta(x)=\int p_\theta(x\mid z)\,p(z)\,dz$, which has no closed form; an encoder "
            r"$q_\phi(z\mid x)=\mathcal{N}(\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x))$ approximates the posterior "
            r"($\mathbb{E}_{q}$ is the expectation over $z\sim q_\phi(z\mid x)$, and $z$ has $J$ dimensions). "
            "Because log is concave, Jensen's inequality bounds the evidence:"
        ),
        Math(
            r"\log p_\theta(x) = \log\mathbb{E}_{q}\left[\frac{p_\theta(x,z)}{q_\phi(z\mid x)}\right]"
            r" \ge \mathbb{E}_{q}\left[\log\frac{p_\theta(x,z)}{q_\phi(z\mid x)}\right]"
            r" =: \mathcal{L}(x),"
        ),
        Paragraph(
            r"and substituting $p_\theta(x)=p_\theta(x,z)/p_\theta(z\mid x)$ shows that the gap is exactly the "
            "KL divergence to the true posterior, zero only where q matches it:"
        ),
        Math(
            r"\log p_\theta(x) - \mathcal{L}(x) = \mathrm{KL}\big(q_\phi(z\mid x)\,\Vert\,p_\theta(z\mid x)\big) \ge 0 ."
        ),
        Paragraph(
            r"Splitting $p_\theta(x,z)=p_\theta(x\mid z)\,p(z)$ gives reconstruction minus rate; for "
            r"$p(z)=\mathcal{N}(0,I)$ the KL has a closed form"
            + ("" if closed else " (this run's prior has none, so the run uses a one-sample estimate)")
            + ":"
        ),
        Math(
            r"\mathcal{L}(x) = \mathbb{E}_{q}\big[\log p_\theta(x\mid z)\big]"
            r" - \mathrm{KL}\big(q_\phi(z\mid x)\,\Vert\,p(z)\big), \qquad \mathrm{KL}"
            r" = \frac{1}{2}\sum_{d=1}^{J}\left(\mu_d^2+\sigma_d^2-1-\log\sigma_d^2\right)."
        ),
        Paragraph(
            r"Writing $z=\mu_\phi(x)+\sigma_\phi(x)\odot\epsilon$ with $\epsilon\sim\mathcal{N}(0,I)$ "
            "(reparameterization) takes the randomness out of the encoder, so one sample per image gives a "
            "low-variance gradient:"
        ),
        Math(
            r"\nabla_\phi\,\mathbb{E}_{q}[f(z)]"
            r" = \mathbb{E}_{\epsilon}\big[\nabla_\phi f(\mu_\phi(x)+\sigma_\phi(x)\odot\epsilon)\big]."
        ),
        Paragraph("The appendix derives each step in full."),
    ]


def trade_off(spec: ExperimentSpec, m: RunMetrics, figure_ref: str | None) -> str:
    """Rate, distortion and beta, in this run's numbers."""
    beta = spec.kl.beta
    rate, distortion = m.test_kl, m.test_recon_nll
    weighting = {
        "constant": f"a constant β = {beta:g}",
        "linear": f"β warmed up linearly to {beta:g}",
        "cyclical": f"β cycled up to {beta:g}",
        "free_bits": f"β = {beta:g} with free bits",
    }.get(spec.kl.kind, f"β = {beta:g}")
    lean = (
        "rate is cheap, so the model keeps more information in z than the ELBO would pay for"
        if beta < 1
        else "every nat of rate costs more than a nat of distortion, so the model keeps less information in z"
        if beta > 1
        else "a nat of rate is worth exactly a nat of distortion: the objective is the ELBO itself"
    )
    shown = (
        f"; the reconstructions and samples in {figure_ref} show what that rate buys"
        if figure_ref
        else " (figures were not drawn for this run)"
    )
    return (
        f"Averaged over the test set, the rate $R$ (the KL term) and the distortion $D$ (the reconstruction NLL) "
        f"add up to the negative ELBO: $D+R = {distortion:.2f} + {rate:.2f} = {distortion + rate:.2f}$ nats in "
        rf"this run. Training minimised $D+\beta R$ with {weighting}: {lean}. {information_sentence(m)} "
        f"{m.active_units} of {len(m.kl_per_dim)} dimensions carry the rate{shown}. Lowering β moves a run down "
        "and to the right on the rate-distortion plane (sharper reconstructions, worse prior samples); raising it "
        "moves it up and to the left."
    )


def panels(figures: list[str], rows: tuple[tuple[tuple[str, str, float], ...], ...]) -> list[list[Panel]]:
    """The rows of a figure from the kinds the run drew (paths relative to the run folder)."""
    out = [
        [
            Panel(Path("figures") / FIGURES.get(name).file_name, label, width)
            for name, label, width in row
            if name in figures
        ]
        for row in rows
    ]
    return [row for row in out if row]


def appendix() -> list[Block]:
    """The full derivation (resources/elbo.md) and how to rebuild the report."""
    text = DERIVATION.read_text().replace("# ", "# Appendix: ", 1) if DERIVATION.exists() else ""
    return [MainEnd(), Prose(text), Heading("Rebuilding this report"), Paragraph(REBUILD)]


def run_document(run_dir: Path, report: RunTables) -> Document:
    """The document of a run's report."""
    spec, metrics = report.spec, report.metrics
    main = panels(report.figures, MAIN_ROWS)
    fig = Figure(main, "; ".join(f"{p.label}" for row in main for p in row) + ".", "fig-panels") if main else None
    byline = (
        f"vaezoo run {md_code(spec.name)} · {pdf.plural(metrics.epochs, 'epoch')} · {md(metrics.split)} · "
        f"{metrics.params:,} parameters · {md(metrics.device)}"
    )
    blocks: list[Block] = [Heading("Model and protocol"), *protocol(spec, metrics)]
    blocks += [Heading("The evidence lower bound"), *derivation(metrics)]
    blocks += [
        Heading("Rate and distortion in this run"),
        Paragraph(trade_off(spec, metrics, "Figure 1" if fig else None)),
    ]
    blocks += [fig] if fig else []
    blocks += [Heading("Results"), Paragraph("Test-set numbers at β = 1, per image:")]
    blocks += [Table(["metric", "value"], [list(row) for row in report.metric_rows])]
    blocks += [Heading("Observations"), Bullets(report.notes), Heading("Discussion"), Discussion()]
    blocks += appendix()
    blocks += [Heading("The spec"), Table(["part", "setting"], [list(row) for row in report.spec_rows], "(left, left)")]
    shown = {name for row in MAIN_ROWS + (MORE,) for name, _, _ in row}
    others = tuple((name, FIGURES.get(name).caption.rstrip("."), 1.0) for name in report.figures if name not in shown)
    more = panels(report.figures, (MORE[:2], MORE[2:], *((o,) for o in others)))
    if more:
        blocks += [Heading("Further figures"), Figure(more, "The run's other figures.", "fig-more")]
    return Document(md(f"{spec.name}: {title(spec)}"), byline, abstract(spec, metrics), blocks, run_dir)


def run_source(run_dir: Path, report: RunTables) -> str:
    """The typst source of a run's report (report.typ before a kept discussion)."""
    from vaezoo.outputs.doc_typst import to_typst

    return to_typst(run_document(run_dir, report))
