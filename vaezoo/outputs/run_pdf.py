"""One run's report.pdf: a two-page paper (title, abstract, model and protocol, the ELBO, the
rate-distortion trade-off in this run's numbers, Figure 1, the metrics, observations) and the full
derivation as an appendix. Everything comes from the run's saved spec, metrics, history and figures."""

from __future__ import annotations

from pathlib import Path

from vaezoo.evaluate.records import RunMetrics
from vaezoo.outputs import pdf
from vaezoo.outputs.figures import FIGURES
from vaezoo.outputs.run_tables import RunTables, spec_summary
from vaezoo.outputs.typst_markup import escape, inline, string
from vaezoo.spec.experiment import ExperimentSpec

#: the panels of Figure 1, in order; the wide strips among them (twice as wide as high) share a row
PANELS = (
    ("reconstructions", "test digits and their reconstructions"),
    ("traversal", "latent traversals"),
    ("samples", "samples from the prior"),
    ("interpolation", "latent interpolations"),
    ("latent_scatter", "posterior means by class"),
    ("manifold", "decoded 2-D latent grid"),
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
    m, beta = spec.model, spec.kl.beta
    kind = "IWAE" if spec.objective.kind == "iwae" else ("β-VAE" if beta != 1 else "VAE")
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
        f"We train {escape(model_name(spec))} and a {LIKELIHOODS.get(spec.model.likelihood.kind, '')} likelihood for "
        f"{pdf.plural(m.epochs, 'epoch')} on {escape(spec.data.dataset.upper())} and evaluate it on the test set. "
        f"The importance-weighted estimate of the test negative log-likelihood is "
        f"*{m.test_nll_iw:.2f} ± {m.test_nll_iw_stderr:.2f} nats* per image "
        f"(K = {m.iw_samples} samples, ± one standard error over test images); the negative ELBO is "
        f"*{m.test_neg_elbo:.2f} nats*, of which the KL term (the rate) is *{m.test_kl:.2f} nats*, "
        f"and {m.active_units} of {len(m.kl_per_dim)} latent dimensions are active. The bound is "
        f"{m.elbo_is_gap:.2f} nats looser than the importance-weighted estimate. "
        "Every number is per test image, in nats, summed over pixels and latent dimensions. "
        f"What the NLL is: {escape(m.nll_kind)}."
    )


def protocol(spec: ExperimentSpec, metrics: RunMetrics) -> str:
    counts = (metrics.split.split() or ["?"])[0].split("/") + ["?", "?", "?"]
    n_train, n_val, n_test = (escape(count) for count in counts[:3])  # metrics.json may come from anyone
    prose = (
        f"The data are {escape(spec.data.dataset.upper())} images, {BINARIZE.get(spec.data.binarize, '')}; "
        f"{n_train} images train, {n_val} more (the last of the training images) are held out for "
        f"validation, and the {n_test} test images are used only for the numbers below. "
        f"Training runs {pdf.plural(spec.train.epochs, 'epoch')} of Adam (batch {spec.train.batch_size}, learning rate "
        f"{spec.train.lr:g}, seed {spec.seed}) on the {'IWAE bound' if spec.objective.kind == 'iwae' else 'ELBO'}"
        f" with the KL weighted by β as set below; test numbers always use β = 1."
    )
    rows = [(part, setting) for part, setting in spec_summary(spec) if part not in ("data", "training")]
    return prose + "\n\n" + pdf.table(rows, ("part", "setting"), align="(left, left)")


def derivation(metrics: RunMetrics) -> str:
    """The ELBO in a few typeset lines: Jensen, the exact gap, the two terms with the Gaussian KL,
    reparameterization."""
    m = pdf.math
    closed = metrics.kl_estimate == "closed-form"
    return "\n".join(
        [
            "The decoder "
            + m(r"p_\theta(x\mid z)")
            + " and the prior "
            + m("p(z)")
            + " define "
            + m(r"p_\theta(x)=\int p_\theta(x\mid z)\,p(z)\,dz")
            + ", which has no closed form; an encoder "
            + m(r"q_\phi(z\mid x)=\mathcal{N}(\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x))")
            + " approximates the posterior. Because log is concave, Jensen's inequality bounds the evidence:",
            m(
                r"\log p_\theta(x) = \log\mathbb{E}_{q_\phi(z\mid x)}\left[\frac{p_\theta(x,z)}{q_\phi(z\mid x)}\right]"
                r" \ge \mathbb{E}_{q_\phi(z\mid x)}\left[\log\frac{p_\theta(x,z)}{q_\phi(z\mid x)}\right]"
                r" =: \mathcal{L}(x),",
                block=True,
            ),
            "and substituting " + m(r"p_\theta(x)=p_\theta(x,z)/p_\theta(z\mid x)") + " shows that the gap is "
            "exactly the KL divergence to the true posterior, zero only where q matches it:",
            m(
                r"\log p_\theta(x) - \mathcal{L}(x) = \mathrm{KL}\big(q_\phi(z\mid x)\,\Vert\,p_\theta(z\mid x)\big)"
                r" \ge 0 .",
                block=True,
            ),
            "Splitting " + m(r"p_\theta(x,z)=p_\theta(x\mid z)\,p(z)") + " gives reconstruction minus rate; "
            "for "
            + m(r"p(z)=\mathcal{N}(0,I)")
            + " the KL has a closed form"
            + ("" if closed else " (this run's prior has none, so the run uses a one-sample estimate)")
            + ":",
            m(
                r"\mathcal{L}(x) = \mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]"
                r" - \mathrm{KL}\big(q_\phi(z\mid x)\,\Vert\,p(z)\big), \qquad \mathrm{KL}"
                r" = \frac{1}{2}\sum_{d=1}^{n_z}\left(\mu_d^2+\sigma_d^2-1-\log\sigma_d^2\right).",
                block=True,
            ),
            "Writing "
            + m(r"z=\mu_\phi(x)+\sigma_\phi(x)\odot\epsilon")
            + " with "
            + m(r"\epsilon\sim\mathcal{N}(0,I)")
            + " (reparameterization) takes the randomness out of the encoder, so one sample per image gives "
            "a low-variance gradient:",
            m(
                r"\nabla_\phi\,\mathbb{E}_{q_\phi(z\mid x)}[f(z)]"
                r" = \mathbb{E}_{\epsilon}\big[\nabla_\phi f(\mu_\phi(x)+\sigma_\phi(x)\odot\epsilon)\big].",
                block=True,
            ),
            "The appendix derives each step in full.",
        ]
    )


def trade_off(spec: ExperimentSpec, m: RunMetrics) -> str:
    """Rate, distortion and beta, in this run's numbers."""
    beta = spec.kl.beta
    rate, distortion, mi = m.test_kl, m.test_recon_nll, m.mutual_information
    amount = "at least" if mi > 0.95 * m.mutual_information_max else "about"  # the estimate's log N ceiling
    objective = pdf.math(r"D+\beta R")
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
    return (
        f"Averaged over the test set, the rate {pdf.math('R')} (the KL term) and the distortion "
        f"{pdf.math('D')} (the reconstruction NLL) add up to the negative ELBO: "
        f"{pdf.math(f'D+R = {distortion:.2f} + {rate:.2f} = {distortion + rate:.2f}')} nats in this run. "
        f"Training minimised {objective} with {weighting}: {lean}. "
        f"Of the {rate:.2f} nats of rate, {amount} {mi:.2f} nats are information {pdf.math('I(x;z)')} about the "
        f"image and the rest, {rate - mi:.2f} nats, is the mismatch between the aggregate posterior and the "
        f"prior. {m.active_units} of {len(m.kl_per_dim)} dimensions carry the rate; the reconstructions "
        "and samples in @fig-panels show what that rate buys. Lowering β moves a run down and to the right "
        "on the rate-distortion plane (sharper reconstructions, worse prior samples); raising it moves it up "
        "and to the left."
    )


def figure(run_dir: Path, figures: list[str], tall_rows: int, scale: float) -> str:
    """Figure 1: the run's image figures and latent scatter as lettered panels, the wide strips in one
    row and the others in `tall_rows` rows (when there are four of them)."""
    panels = [
        (run_dir / "figures" / FIGURES.get(name).file_name, label, FIGURES.get(name).caption)
        for name, label in PANELS
        if name in figures
    ]
    wide = [panel for panel in panels if pdf.aspect(panel[0]) >= 2]
    rows = pdf.panel_rows(wide, [panel for panel in panels if panel not in wide], tall_rows)
    lettered = [panel for row in rows for panel in row]
    captions = " ".join(f"({chr(97 + i)}) {inline(caption)}" for i, (_, _, caption) in enumerate(lettered))
    cells = [[(path, label) for path, label, _ in row] for row in rows]
    return pdf.figure(cells, run_dir, captions, "fig-panels", scale)


def run_source(run_dir: Path, report: RunTables, tall_rows: int = 1, scale: float = 1.0) -> str:
    """The typst source of a run's report, Figure 1 laid out as pdf.figure's layouts say."""
    spec, metrics = report.spec, report.metrics
    fig = figure(run_dir, report.figures, tall_rows, scale)
    trade = trade_off(spec, metrics)
    if not fig:
        trade = trade.replace("in @fig-panels", "(figures were not drawn for this run)")
    byline = (
        f"vaezoo run #raw({string(spec.name)}) · {pdf.plural(metrics.epochs, 'epoch')} · "
        f"{escape(metrics.split)} · {metrics.params:,} parameters · {escape(metrics.device)}"
    )
    parts = [
        pdf.preamble(f"{spec.name}: {title(spec)}"),
        pdf.header(escape(title(spec)), byline, abstract(spec, metrics)),
        "= Model and protocol",
        protocol(spec, metrics),
        "= The evidence lower bound",
        derivation(metrics),
        "= Rate and distortion in this run",
        trade,
        fig,
        "= Results",
        "Test-set numbers at β = 1, per image:",
        pdf.table(report.metric_rows, ("metric", "value")),
        "= Observations",
        pdf.bullets(report.notes),
        pdf.MAIN_END,
        pdf.appendix(),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def write_run_pdf(run_dir: Path, report: RunTables) -> pdf.PdfPages:
    """run_dir/report.pdf (and its source, report.typ), from the run's computed tables."""
    return pdf.write_pdf(run_dir / "report.pdf", lambda *layout: run_source(run_dir, report, *layout))
