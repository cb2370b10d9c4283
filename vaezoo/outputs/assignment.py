"""The assignment's hand-in: one report of a sweep that trains what the assignment asks for (see
experiments/assignment.yaml): a 20-d model (its reconstructions and samples), a 2-d model (its latent
space) and a beta sweep of the 20-d model (the rate-distortion trade-off in the runs' own numbers, and
their training curves). At most two A4 pages of main body, then the appendix.

A sweep is an assignment when its name is `assignment` or starts with `assignment-`. The runs' roles
come from their saved specs: the 2-d run has latent_dim 2; the beta runs are the others, and the 20-d
model shown is the one among them at beta = 1 (else the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vaezoo.outputs.document import Block, Bullets, Discussion, Document, Figure, Heading, Panel, Paragraph, Table
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.run_pdf import appendix, derivation, model_name
from vaezoo.outputs.run_tables import information_sentence
from vaezoo.outputs.sweep_figures import save_curves_comparison, save_rate_distortion
from vaezoo.outputs.sweep_files import SweepPoint, SweepSummary
from vaezoo.outputs.sweep_tables import SweepTables

BETA_PLANE, BETA_CURVES = "beta_rate_distortion.png", "beta_curves.png"


def is_assignment(summary: SweepSummary) -> bool:
    """True for a sweep whose spec asks for the assignment's hand-in (`report: assignment`)."""
    return summary.report == "assignment"


@dataclass(frozen=True)
class Roles:
    """The runs an assignment's report reads: the 20-d model, the 2-d model, the beta runs (by beta)."""

    main: SweepPoint | None
    latent2: SweepPoint | None
    betas: list[SweepPoint]


def beta(point: SweepPoint) -> float:
    return point.spec.kl.beta if point.spec is not None else float("nan")


def roles(summary: SweepSummary) -> Roles:
    loaded = [p for p in summary.points if p.spec is not None]
    latent2 = next((p for p in loaded if p.spec.model.latent_dim == 2), None)
    betas = sorted((p for p in loaded if p is not latent2), key=beta)
    main = next((p for p in betas if beta(p) == 1.0), betas[0] if betas else None)
    return Roles(main, latent2, betas)


def beta_label(point: SweepPoint) -> str:
    return f"β = {beta(point):g}"


def write_assignment_figures(summary: SweepSummary, figure_dir: Path) -> None:
    """The beta runs' rate-distortion plane and training curves, labelled by beta."""
    runs = roles(summary).betas
    save_rate_distortion(
        [(beta_label(p), p.metrics.test_kl, p.metrics.test_recon_nll) for p in runs], figure_dir / BETA_PLANE
    )
    save_curves_comparison([(beta_label(p), p.history) for p in runs], figure_dir / BETA_CURVES, half=True)


def _panel(point: SweepPoint | None, figure: str, label: str, width: float = 0.5) -> list[Panel]:
    return [] if point is None else [Panel(Path(point.name) / "figures" / figure, label, width)]


def model_section(r: Roles) -> list[Block]:
    """The 20-d model: its numbers, what its figures show, and Figure 1."""
    if r.main is None or r.main.spec is None:
        return [Paragraph("The sweep has no 20-d run to show.")]
    m = r.main.metrics
    text = (
        f"{_sentence_start(md(model_name(r.main.spec)))} (run {md_code(r.main.name)}) reaches a test negative ELBO of "
        f"**{m.test_neg_elbo:.2f} nats** and an importance-weighted NLL of **{m.test_nll_iw:.2f} ± "
        f"{m.test_nll_iw_stderr:.2f} nats** (K = {m.iw_samples}); the bound is {m.elbo_is_gap:.2f} nats loose. "
        f"Its rate is {m.test_kl:.2f} nats, carried by {m.active_units} of {len(m.kl_per_dim)} latent dimensions: "
        f"the rest stay at the prior and carry nothing. {information_sentence(m)} "
        f"Figure 1(a) shows what that rate buys: with a distortion of {m.test_recon_nll:.2f} nats the "
        "reconstructions keep each digit's class and pose but lose stroke detail (they are the decoder's mean, "
        "hence blurred); the prior samples in (b) are digit-like where the aggregate posterior covers the prior, "
        "and smeared where it leaves holes."
    )
    rows = [_panel(r.main, "reconstructions.png", "test digits (top) and reconstructions", 0.5)]
    rows[0] += _panel(r.main, "samples.png", "samples from the prior", 0.35)
    caption = f"The {m.active_units}-active-unit, {len(m.kl_per_dim)}-d model at β = {beta(r.main):g}."
    return [Paragraph(text), Figure(rows, caption, "fig-model")]


def latent_section(r: Roles) -> list[Block]:
    if r.latent2 is None:
        return [Paragraph("The sweep has no 2-d run to show.")]
    m = r.latent2.metrics
    text = (
        f"With only two latent dimensions (run {md_code(r.latent2.name)}) the negative ELBO is "
        f"{m.test_neg_elbo:.2f} nats (rate {m.test_kl:.2f}, distortion {m.test_recon_nll:.2f}). "
        f"Figure 2(a) plots the test posterior means coloured by class: a linear classifier on them reaches "
        f"{100 * m.probe_accuracy:.1f} % (chance 10 %), so classes form regions of the plane, with the "
        "visually similar digits (4/9, 3/5/8) overlapping. The decoded grid (b) morphs smoothly from one class "
        "into the next: the decoder fills the space between the clusters with plausible in-between digits."
    )
    rows = [_panel(r.latent2, "latent_scatter.png", "test posterior means by class", 0.5)]
    rows[0] += _panel(r.latent2, "manifold.png", "decoded grid of the 2-d latent space", 0.45)
    return [Paragraph(text), Figure(rows, "The 2-d model's latent space.", "fig-latent")]


def beta_section(r: Roles) -> list[Block]:
    runs = r.betas
    if len(runs) < 2:
        return [Paragraph("The sweep has fewer than two β runs: there is no trade-off to show.")]
    low, high = runs[0], runs[-1]
    best = min(runs, key=lambda p: p.metrics.test_neg_elbo)
    dr = low.metrics.test_kl - high.metrics.test_kl
    dd = high.metrics.test_recon_nll - low.metrics.test_recon_nll
    text = (
        r"Training minimises $D + \beta R$. From β = "
        f"{beta(low):g} to β = {beta(high):g} the rate falls from {low.metrics.test_kl:.2f} to "
        f"{high.metrics.test_kl:.2f} nats while the distortion rises from {low.metrics.test_recon_nll:.2f} to "
        f"{high.metrics.test_recon_nll:.2f} nats (Figure 3a: the runs move up and to the left)"
        + (f"; each nat of rate given up cost {dd / dr:.2f} nats of distortion" if dr > 0 and dd > 0 else "")
        + f". The best bound, $R + D = {best.metrics.test_neg_elbo:.2f}$ nats, is at {beta_label(best)}, on the "
        "lowest dashed iso-ELBO line"
        + (
            ": below β = 1 the model buys rate it cannot use, above it the distortion grows faster than the "
            "rate shrinks"
            if beta(best) == 1.0
            else ""
        )
        + ". The curves (Figure 3b) show the trade-off forming during training: "
        "the larger β, the lower the rate settles and the higher the distortion stays; "
        f"active units fall from {low.metrics.active_units} to {high.metrics.active_units}."
    )
    rows = [
        [beta_label(p), f"{p.metrics.test_kl:.2f}", f"{p.metrics.test_recon_nll:.2f}", f"{p.metrics.test_neg_elbo:.2f}"]
        + [f"{p.metrics.test_nll_iw:.2f}", str(p.metrics.active_units)]
        for p in runs
    ]
    header = ["β", "rate R", "distortion D", "-ELBO", "NLL (IS)", "active units"]
    figure = Figure(
        [
            [
                Panel(Path("figures") / BETA_PLANE, "rate against distortion; dashed: R + D constant", 0.5),
                Panel(Path("figures") / BETA_CURVES, "training curves of the β runs", 0.5),
            ],
        ],
        "The β trade-off in the runs' own numbers (test set, nats per image, β = 1 for evaluation).",
        "fig-beta",
    )
    return [Paragraph(text), Table(header, rows, align="(left, right)"), figure]


def assignment_document(sweep_dir: Path, tables: SweepTables) -> Document:
    """The hand-in: the derivation, the 20-d model, the 2-d latent space, the β trade-off, a discussion."""
    summary = tables.summary
    r = roles(summary)
    first = r.main.metrics if r.main else summary.points[0].metrics
    epochs = sorted({p.metrics.epochs for p in summary.points})
    dim = r.main.spec.model.latent_dim if r.main and r.main.spec else "?"
    abstract = (
        f"We derive the evidence lower bound (ELBO) of a variational autoencoder and train {len(summary.points)} "
        f"VAEs on binarized MNIST ({', '.join(map(str, epochs))} epochs each): a {dim}-d model, a 2-d model whose latent "
        f"space can be drawn, and the same model at β in {{{', '.join(f'{beta(p):g}' for p in r.betas)}}}. "
        "Every number is per test image, in nats, evaluated at β = 1."
    )
    blocks: list[Block] = [Heading("The evidence lower bound"), *derivation(first)]
    blocks += [Heading("A 20-dimensional VAE"), *model_section(r)]
    blocks += [Heading("A 2-dimensional latent space"), *latent_section(r)]
    blocks += [Heading("The β trade-off: rate against distortion"), *beta_section(r)]
    blocks += [Heading("Discussion"), Discussion()]
    blocks += appendix()
    blocks += [Heading("All runs"), Paragraph(f"{tables.caption}."), Table(tables.header, tables.rows, align="left")]
    blocks += [Heading("Observations across all runs"), Bullets(tables.notes)]
    byline = f"vaezoo sweep {md_code(summary.name)} · {len(summary.points)} runs"
    return Document("The ELBO and its trade-offs: a VAE on MNIST", byline, abstract, blocks, sweep_dir)


def _sentence_start(phrase: str) -> str:
    """`phrase` with its first letter capitalized and the rest as it is ("an MLP VAE" -> "An MLP VAE")."""
    return phrase[:1].upper() + phrase[1:]
