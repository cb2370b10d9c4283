"""A sweep's report as a Document (document.py): the same two-page paper as a run's (see run_pdf), for a
set of runs: what varied, the model they share, the ELBO, the rate-distortion trade-off in the sweep's own
numbers, Figure 1 (the rate-distortion plane and every run's curves), the results table, observations, the
student's discussion, and the derivation and comparison grids as an appendix."""

from __future__ import annotations

from pathlib import Path

from vaezoo.evaluate.records import RunMetrics
from vaezoo.outputs import pdf
from vaezoo.outputs.document import Block, Bullets, Discussion, Document, Figure, Heading, Panel, Paragraph, Table
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.paired import config_label
from vaezoo.outputs.run_pdf import appendix, derivation, model_name
from vaezoo.outputs.run_tables import spec_summary
from vaezoo.outputs.sweep_entries import SweepEntry, nll_kinds, point_label
from vaezoo.outputs.sweep_tables import SweepTables
from vaezoo.spec.experiment import ExperimentSpec

#: the figures of a sweep's report: (file under figures/, what it shows, share of the text width)
PANELS = (
    ("rate_distortion.png", "each run's rate against its distortion", 0.5),
    ("curves_grid.png", "every run's training curves", 1.0),
    ("reconstructions_grid.png", "the same test digits reconstructed by each run (one row per run)", 1.0),
    ("samples_grid.png", "prior samples of each run, from the same draws (one row per run)", 1.0),
    ("interpolation_grid.png", "latent interpolations between the same test digits, one row per run", 1.0),
    ("traversal_grid.png", "each run's two most informative latent dimensions traversed", 1.0),
)
#: the caption of a figure under figures/ that PANELS names, by what it shows (not by its file name)
CAPTIONS = {file: label for file, label, _ in PANELS}
#: the rows of run_pdf's spec table that a varied key's slot changes
PARTS = {
    "model.latent_dim": "latent dimensions",
    **{f"model.{part}": part for part in ("encoder", "posterior", "prior", "decoder", "likelihood")},
    "kl": "KL weighting",
    "objective": "objective",
}
CAPTION = (
    "(a) Each run's test rate R (the KL term) against its distortion D (the reconstruction NLL); along "
    "each dashed line R + D, the negative ELBO, is constant, so a run on a lower line has the better bound. "
    "(b) Every run's validation -ELBO, distortion, rate and β per epoch."
)
GRIDS_CAPTION = "The runs side by side, one row per run, from the same test digits and prior draws."


def title(name: str, varied: dict[str, list[str]], spec: ExperimentSpec | None) -> str:
    what = "; ".join(f"{key} in {{{', '.join(values)}}}" for key, values in varied.items() if key != "seed")
    # plain text: the caller escapes it for the language it goes into
    base = f" for {model_name(spec)} on {spec.data.dataset.upper()}" if spec else ""
    return f"Sweep {name}: {what or 'seeds'}{base}"


def abstract(entries: list[SweepEntry], keys: list[str], results: list[RunMetrics]) -> str:
    best = min(entries, key=lambda e: e.metrics.test_nll_iw)
    rates = [e.metrics.test_kl for e in entries]
    elbos = [e.metrics.test_neg_elbo for e in entries]
    numbers = (
        f"The lowest importance-weighted test NLL is **{best.metrics.test_nll_iw:.2f} nats** per image, at "
        f"{point_label(best, keys)}; the negative ELBO ranges from {min(elbos):.2f} to {max(elbos):.2f} nats"
        if len(nll_kinds(entries)) == 1
        else "Their NLLs are of different kinds, so the table compares them only within a kind"
    )
    return (
        f"{len(results)} runs at {len(entries)} settings ({md(', '.join(keys))}). {numbers}, and the rate "
        f"(the KL term) ranges from {min(rates):.2f} to {max(rates):.2f} nats. "
        f"Every number is per test image, in nats, at β = 1, with K = "
        f"{', '.join(str(k) for k in sorted({r.iw_samples for r in results}))} importance samples."
    )


def protocol(spec: ExperimentSpec | None, varied: dict[str, list[str]]) -> list[Block]:
    changes = "; ".join(f"{md_code(k)} in {md(', '.join(v))}" for k, v in varied.items())
    prose = f"Every run trains the same spec but for what varies: {changes}. "
    if spec is None:
        return [Paragraph(prose)]
    prose += (
        f"The shared spec (shown for the first run) trains {pdf.plural(spec.train.epochs, 'epoch')} of Adam (batch "
        f"{spec.train.batch_size}, learning rate {spec.train.lr:g}) on {md(spec.data.dataset.upper())}, "
        f"binarize {md_code(spec.data.binarize)}, with {spec.data.val_size} training images held "
        "out for validation; test numbers always use β = 1."
    )
    rows = [
        [part, setting + "".join(f" *varies:* {md_code(key)}" for key in varied if PARTS.get(_slot(key)) == part)]
        for part, setting in spec_summary(spec)
        if part not in ("data", "training")
    ]
    return [Paragraph(prose), Table(["part", "setting"], rows, align="(left, left)")]


def _slot(key: str) -> str:
    """The spec part a dotted key belongs to: model.encoder.hidden -> model.encoder, kl.beta -> kl."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "model" else parts[0]


def trade_off(entries: list[SweepEntry], keys: list[str], drawn: bool) -> str:
    """The trade-off in the sweep's numbers: from the lowest rate to the highest, what distortion did."""
    lines = "the dashed lines of the rate-distortion plane join" if drawn else "lines of slope -1 join"
    text = (
        f"Each run sits at a point $(R, D)$ of the rate-distortion plane, and its negative ELBO "
        f"is $R + D$: {lines} the points of equal ELBO. "
    )
    if len(nll_kinds(entries)) > 1:
        return text + (
            "These runs' distortions are of different kinds (a probability mass and a density, or BCE), so "
            "only their rates compare: "
            + ", ".join(f"{point_label(e, keys)} {e.metrics.test_kl:.2f}" for e in entries)
            + " nats."
        )
    if len(entries) < 2:
        return text + "With one setting there is no trade-off to read."
    lowest, highest = min(entries, key=_rate), max(entries, key=_rate)
    low, high = lowest.metrics, highest.metrics
    best = min(entries, key=lambda e: e.metrics.test_neg_elbo)
    dr, dd = high.test_kl - low.test_kl, high.test_recon_nll - low.test_recon_nll
    text += (
        f"From {point_label(lowest, keys)} to {point_label(highest, keys)} the rate rises from "
        f"{low.test_kl:.2f} to {high.test_kl:.2f} nats while the distortion "
        f"{'falls' if dd < 0 else 'rises'} from {low.test_recon_nll:.2f} to {high.test_recon_nll:.2f} nats"
    )
    if dr > 0 and dd < 0:
        verdict = "more than pays for itself" if -dd > dr else "does not pay for itself"
        text += f": each extra nat of rate lowered the distortion by {-dd / dr:.2f} nats, so the extra rate {verdict}"
    bound = f"$R + D = {best.metrics.test_neg_elbo:.2f}$"
    text += f". The best bound, {bound} nats, is {point_label(best, keys)}'s, on the lowest iso-ELBO line. "
    if "kl.beta" in keys:
        text += (
            r"Training minimised $D + \beta R$: a larger β makes rate dearer, so the runs move "
            "up and to the left; below β = 1 the objective is no longer a bound on the NLL."
        )
    return text


def _rate(entry: SweepEntry) -> float:
    return entry.metrics.test_kl


def figures(sweep_dir: Path) -> list[Block]:
    """Figure 1, the rate-distortion plane and every run's training curves; Figure 2, the comparison grids
    of the kinds the runs drew strips of (each captioned by what it shows)."""
    found = {file: (sweep_dir / "figures" / file).exists() for file, _, _ in PANELS}
    main = [[Panel(Path("figures") / file, label, width)] for file, label, width in PANELS[:2] if found[file]]
    grids = [
        [Panel(Path("figures") / file, label, width)]
        for file, label, width in PANELS[2:]
        if found[file] and any(sweep_dir.glob(f"*/figures/strips/{file.removesuffix('_grid.png')}.png"))
    ]
    out: list[Block] = [Figure(main, CAPTION, "fig-sweep")] if main else []
    return out + ([Figure(grids, GRIDS_CAPTION, "fig-grids")] if grids else [])


def sweep_document(sweep_dir: Path, tables: SweepTables) -> Document:
    """The document of a sweep's report; the shared spec is the first run's."""
    summary, entries, keys = tables.summary, tables.entries, tables.keys
    spec = summary.points[0].spec if summary.points else None
    results = [point.metrics for point in summary.points]
    figs = figures(sweep_dir)
    heading = title(summary.name, tables.varied, spec)
    byline = f"vaezoo sweep {md_code(summary.name)} · {len(results)} runs"
    main = [f for f in figs if isinstance(f, Figure) and f.label == "fig-sweep"]
    blocks: list[Block] = [Heading("What varied, and the shared model"), *protocol(spec, tables.varied)]
    blocks += [Heading("The evidence lower bound"), *derivation(results[0])]
    blocks += [Heading("The rate-distortion trade-off in this sweep"), Paragraph(trade_off(entries, keys, bool(main)))]
    blocks += main
    blocks += [Heading("Results"), Paragraph(f"{tables.caption}. Sorted by {md_code(summary.headline)}.")]
    blocks += [Table(tables.header, tables.rows, align="left")]
    if tables.paired:
        blocks += paired_blocks(tables)
    blocks += [Heading("Observations"), Bullets(tables.notes), Heading("Discussion"), Discussion()]
    blocks += appendix() + [f for f in figs if f not in main]
    return Document(md(heading), byline, abstract(entries, keys, results), blocks, sweep_dir)


def paired_blocks(tables: SweepTables) -> list[Block]:
    """The paired differences against the first point, as a paragraph and a table."""
    first = config_label(*tables.summary.pairs[0])
    text = (
        f"Test NLL (IS) of each run minus {md(first)}'s (the first point; same seed), image by image on the same "
        "test images, averaged over images and seeds; SE is the standard error of that paired mean."
    )
    rows = [
        [md(d.point), f"{d.difference:+.3f}", f"{d.stderr:.3f}", "yes" if d.significant else "no"]
        for d in tables.paired or []
    ]
    return [Paragraph(text), Table(["run", "difference (nats)", "paired SE", "beyond 2 SE"], rows, align="left")]
