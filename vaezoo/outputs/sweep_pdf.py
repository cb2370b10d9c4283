"""A sweep's report.pdf: the same two-page paper as a run's (see run_pdf), for a set of runs: what
varied, the model they share, the ELBO, the rate-distortion trade-off in the sweep's own numbers,
Figure 1 (the rate-distortion plane with iso-ELBO lines, and comparison grids), the results table,
observations, and the derivation as an appendix."""

from __future__ import annotations

from pathlib import Path

from vaezoo.evaluate.records import RunMetrics
from vaezoo.outputs import pdf
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.run_pdf import derivation, model_name
from vaezoo.outputs.run_tables import spec_summary
from vaezoo.outputs.sweep_entries import SweepEntry, nll_kinds, point_label
from vaezoo.outputs.sweep_tables import SweepTables
from vaezoo.outputs.typst_markup import escape, inline, string
from vaezoo.spec.experiment import ExperimentSpec

#: Figure 1's panels: (file under figures/, sub-caption)
PANELS = (
    ("rate_distortion.png", "rate against distortion, iso-ELBO lines dashed"),
    ("reconstructions_grid.png", "reconstructions, one row per run"),
    ("samples_grid.png", "prior samples, one row per run"),
    ("interpolation_grid.png", "interpolations, one row per run"),
)
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
    "(b)-(d) The runs' comparison strips, one row per run, from the same test digits and prior draws."
)


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
        f"The lowest importance-weighted test NLL is *{best.metrics.test_nll_iw:.2f} nats* per image, at "
        f"{inline(point_label(best, keys))}; the negative ELBO ranges from {min(elbos):.2f} to {max(elbos):.2f} nats"
        if len(nll_kinds(entries)) == 1
        else "Their NLLs are of different kinds, so the table compares them only within a kind"
    )
    return (
        f"{len(results)} runs at {len(entries)} settings ({escape(', '.join(keys))}). {numbers}, and the rate "
        f"(the KL term) ranges from {min(rates):.2f} to {max(rates):.2f} nats. "
        f"Every number is per test image, in nats, at β = 1, with K = "
        f"{', '.join(str(k) for k in sorted({r.iw_samples for r in results}))} importance samples."
    )


def protocol(spec: ExperimentSpec | None, varied: dict[str, list[str]]) -> str:
    changes = "; ".join(f"#raw({string(k)}) in {escape(', '.join(v))}" for k, v in varied.items())  # plain values
    prose = f"Every run trains the same spec but for what varies: {changes}. "
    if spec is None:
        return prose
    prose += (
        f"The shared spec (shown for the first run) trains {pdf.plural(spec.train.epochs, 'epoch')} of Adam (batch "
        f"{spec.train.batch_size}, learning rate {spec.train.lr:g}) on {escape(spec.data.dataset.upper())}, "
        f"binarize #raw({string(spec.data.binarize)}), with {spec.data.val_size} training images held "
        "out for validation; test numbers always use β = 1."
    )
    rows = [
        (part, setting + "".join(f" *varies:* {md_code(key)}" for key in varied if PARTS.get(_slot(key)) == part))
        for part, setting in spec_summary(spec)
        if part not in ("data", "training")
    ]
    return prose + "\n\n" + pdf.table(rows, ("part", "setting"), align="(left, left)")


def _slot(key: str) -> str:
    """The spec part a dotted key belongs to: model.encoder.hidden -> model.encoder, kl.beta -> kl."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "model" else parts[0]


def trade_off(entries: list[SweepEntry], keys: list[str], drawn: bool) -> str:
    """The trade-off in the sweep's numbers: from the lowest rate to the highest, what distortion did."""
    lines = "the dashed lines of @fig-sweep (a) join" if drawn else "lines of slope -1 join"
    text = (
        f"Each run sits at a point {pdf.math('(R, D)')} of the rate-distortion plane, and its negative ELBO "
        f"is {pdf.math('R + D')}: {lines} the points of equal ELBO. "
    )
    if len(nll_kinds(entries)) > 1:
        return text + (
            "These runs' distortions are of different kinds (a probability mass and a density, or BCE), so "
            "only their rates compare: "
            + ", ".join(f"{inline(point_label(e, keys))} {e.metrics.test_kl:.2f}" for e in entries)
            + " nats."
        )
    if len(entries) < 2:
        return text + "With one setting there is no trade-off to read."
    lowest, highest = min(entries, key=_rate), max(entries, key=_rate)
    low, high = lowest.metrics, highest.metrics
    best = min(entries, key=lambda e: e.metrics.test_neg_elbo)
    dr, dd = high.test_kl - low.test_kl, high.test_recon_nll - low.test_recon_nll
    text += (
        f"From {inline(point_label(lowest, keys))} to {inline(point_label(highest, keys))} the rate rises from "
        f"{low.test_kl:.2f} to {high.test_kl:.2f} nats while the distortion "
        f"{'falls' if dd < 0 else 'rises'} from {low.test_recon_nll:.2f} to {high.test_recon_nll:.2f} nats"
    )
    if dr > 0 and dd < 0:
        verdict = "more than pays for itself" if -dd > dr else "does not pay for itself"
        text += f": each extra nat of rate lowered the distortion by {-dd / dr:.2f} nats, so the extra rate {verdict}"
    bound = pdf.math(f"R + D = {best.metrics.test_neg_elbo:.2f}")
    text += f". The best bound, {bound} nats, is {inline(point_label(best, keys))}'s, on the lowest iso-ELBO line. "
    if "kl.beta" in keys:
        text += (
            "Training minimised " + pdf.math(r"D + \beta R") + ": a larger β makes rate dearer, so the runs move "
            "up and to the left; below β = 1 the objective is no longer a bound on the NLL."
        )
    return text


def _rate(entry: SweepEntry) -> float:
    return entry.metrics.test_kl


def figure(sweep_dir: Path, tall_rows: int, scale: float) -> str:
    """Figure 1: the rate-distortion plot, and the comparison grids of the kinds the runs drew strips of."""
    panels = [
        (sweep_dir / "figures" / file, label)
        for file, label in PANELS
        if file == "rate_distortion.png"
        or any(sweep_dir.glob(f"*/figures/strips/{file.removesuffix('_grid.png')}.png"))
    ]
    rows = pdf.panel_rows([], panels, tall_rows)
    return pdf.figure(rows, sweep_dir, CAPTION, "fig-sweep", scale)


def sweep_source(sweep_dir: Path, tables: SweepTables, tall_rows: int = 1, scale: float = 1.0) -> str:
    """The typst source of a sweep's report; the shared spec is the first run's."""
    summary, entries, keys = tables.summary, tables.entries, tables.keys
    spec = summary.points[0].spec if summary.points else None
    results = [point.metrics for point in summary.points]
    fig = figure(sweep_dir, tall_rows, scale)
    heading = title(summary.name, tables.varied, spec)
    byline = f"vaezoo sweep #raw({string(summary.name)}) · {len(results)} runs"
    parts = [
        pdf.preamble(heading),
        pdf.header(escape(heading), byline, abstract(entries, keys, results)),
        "= What varied, and the shared model",
        protocol(spec, tables.varied),
        "= The evidence lower bound",
        derivation(results[0]),
        "= The rate-distortion trade-off in this sweep",
        trade_off(entries, keys, drawn=bool(fig)),
        fig,
        "= Results",
        f"{inline(tables.caption)}. Sorted by #raw({string(summary.headline)}).",
        pdf.table(tables.rows, tables.header, align="left"),
        "= Observations",
        pdf.bullets(tables.notes),
        pdf.MAIN_END,
        pdf.appendix(),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def write_sweep_pdf(sweep_dir: Path, tables: SweepTables) -> pdf.PdfPages:
    """sweep_dir/report.pdf and report.typ, from the sweep's computed tables."""
    return pdf.write_pdf(sweep_dir / "report.pdf", lambda rows, scale: sweep_source(sweep_dir, tables, rows, scale))
