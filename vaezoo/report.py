"""A run's report: report.md (GitHub markdown) and a self-contained report.html (images embedded)."""

from __future__ import annotations

import base64
import csv
import html
import io as stdio
import json
import re
from pathlib import Path
from typing import Any

import markdown

from vaezoo import io
from vaezoo.spec import ExperimentSpec

DOCS = Path(__file__).resolve().parents[1] / "docs" / "elbo.md"

CAPTIONS = {
    "reconstructions": "Test digits (top row) above their reconstructions, the likelihood's mean at z = mu.",
    "samples": "Decoded draws from the prior N(0, I): the likelihood's mean, not a binary sample.",
    "interpolation": "Linear paths between the latent means of pairs of test digits of different classes.",
    "traversal": "One latent dimension at a time (rows: the dimensions with the most KL) swept from -3 to 3; the others held at a test digit's mean.",
    "latent_scatter": "Posterior means of the test digits, coloured by label.",
    "manifold": "The decoder over a grid of Gaussian quantiles of the 2-D latent space.",
    "curves": "Training and validation loss, reconstruction and KL per epoch (nats per image), and beta.",
    "kl_per_dim": "Test KL per latent dimension (nats per image): the dimensions that carry information.",
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f2f2f2; } td { text-align: right; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; } figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.9rem; }
.math { font-family: 'DejaVu Serif', serif; background: #f7f7fb; padding: 0 0.2rem; }
div.math { display: block; padding: 0.5rem; margin: 0.6rem 0; overflow-x: auto; white-space: pre-wrap; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a table, or an em dash for a missing one."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def spec_summary(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """The spec in brief: one row per part, each with its settings."""
    m = spec.model

    def part(component: Any) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in component.fields().items())
        return f"`{component.kind}`" + (f" ({settings})" if settings else "")

    return [
        ("data", f"{spec.data.dataset}, binarize `{spec.data.binarize}`, {spec.data.val_size} validation images"),
        ("latent dimensions", str(m.latent_dim)),
        ("encoder", part(m.encoder)),
        ("decoder", part(m.decoder)),
        ("likelihood", part(m.likelihood)),
        ("KL weighting", part(spec.kl)),
        ("training", f"{spec.train.epochs} epochs, batch {spec.train.batch_size}, Adam lr {spec.train.lr:g}, seed {spec.seed}"),
    ]


def metrics_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline metrics with their units."""
    k = metrics.get("iw_samples")
    return [
        ("test -ELBO (nats/image, beta = 1)", fmt(metrics["test_neg_elbo"])),
        ("of which reconstruction -log p(x|z)", fmt(metrics["test_recon_nll"])),
        ("of which KL(q(z|x) || p(z))", fmt(metrics["test_kl"])),
        (f"test NLL, importance-weighted, K = {k} (nats/image)", f"{fmt(metrics['test_nll_iw'])} ± {fmt(metrics['test_nll_iw_stderr'])}"),
        ("test bits per dimension", fmt(metrics["test_bits_per_dim"], 4)),
        ("ELBO-to-IS gap (nats/image)", fmt(metrics["elbo_is_gap"])),
        ("active units (Cov_x E_q[z_d] > 0.01)", f"{metrics['active_units']} of {len(metrics['kl_per_dim'])}"),
        ("mutual information I(x; z) (nats)", fmt(metrics["mutual_information"])),
        ("linear probe accuracy on the means", f"{100 * metrics['probe_accuracy']:.1f} %"),
        ("what the NLL is", metrics["nll_kind"]),
        ("split", metrics["split"]),
        ("parameters", f"{metrics['params']:,}"),
        ("training", f"{metrics['train_seconds']:.0f} s, {metrics['train_images_per_second']:,.0f} images/s on {metrics['device']}"),
    ]


def observations(metrics: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    """Findings computed from this run's numbers."""
    kl = metrics["kl_per_dim"]
    total = sum(kl) or 1.0
    order = sorted(range(len(kl)), key=lambda d: -kl[d])
    top = order[: max(1, min(3, len(kl)))]
    collapsed = [d for d in range(len(kl)) if kl[d] < 0.01]
    gap = metrics["elbo_is_gap"]
    notes = [
        f"The ELBO is {gap:.2f} nats looser than the K = {metrics['iw_samples']} importance-weighted estimate "
        f"({metrics['test_neg_elbo']:.2f} vs {metrics['test_nll_iw']:.2f}): about that much of the bound is the "
        "posterior approximation's gap KL(q(z|x) || p(z|x)), not the model.",
        f"{metrics['active_units']} of {len(kl)} latent dimensions are active; dimensions "
        + ", ".join(f"z{d + 1} ({kl[d]:.2f} nats)" for d in top)
        + f" carry {100 * sum(kl[d] for d in top) / total:.0f} % of the {sum(kl):.2f} nats of KL.",
        (f"{len(collapsed)} dimensions carry under 0.01 nats each: they have collapsed to the prior." if collapsed
         else "No dimension has collapsed to the prior (every one carries at least 0.01 nats)."),
        mutual_information_note(metrics),
        f"A linear classifier on the posterior means reaches {100 * metrics['probe_accuracy']:.1f} % test accuracy "
        "(chance is 10 %): the labels are that linearly readable from z without ever being trained on.",
    ]
    notes += training_observations(history)
    if metrics["nll_kind"].startswith("not a likelihood"):
        notes.append("The data are grey levels under a Bernoulli likelihood: these numbers are BCE, not log-likelihoods.")
    return notes


def mutual_information_note(metrics: dict[str, Any]) -> str:
    """Rate = I(x; z) + KL(q(z) || p(z)); say so, and say when the estimate sits at its log N ceiling."""
    mi, rate, ceiling = metrics["mutual_information"], metrics["test_kl"], metrics["mutual_information_max"]
    note = (
        f"Of the rate of {rate:.2f} nats, the estimated I(x; z) is {mi:.2f} nats; the rest, {rate - mi:.2f} nats, "
        "is the mismatch KL(q(z) || p(z)) between the aggregate posterior and the prior."
    )
    if mi > 0.95 * ceiling:
        note += (
            f" The estimate is at its ceiling log N = {ceiling:.2f} (each test posterior is far from the others), "
            "so I(x; z) may be larger and the mismatch smaller."
        )
    return note


def training_observations(history: list[dict[str, Any]]) -> list[str]:
    """How training ended: still improving or flat, and the train/validation gap."""
    last = history[-1]
    if last.get("val_neg_elbo") is None or len(history) < 2:
        return []
    previous = history[-2]["val_neg_elbo"]
    change = last["val_neg_elbo"] - previous
    trend = "still improving" if change < -0.1 else ("getting worse (overfitting)" if change > 0.1 else "flat")
    return [
        f"Validation -ELBO moved {change:+.2f} nats in the last epoch ({trend}); train loss {last['train_loss']:.2f} "
        f"vs validation -ELBO {last['val_neg_elbo']:.2f} at beta = {last['beta']:.2f}."
    ]


def table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_escape_pipes(a)} | {_escape_pipes(b)} |" for a, b in rows]
    return "\n".join(lines)


def _escape_pipes(text: str) -> str:
    """p(x|z) inside a table cell would split the cell."""
    return text.replace("|", "\\|")


def run_markdown(spec: ExperimentSpec, metrics: dict[str, Any], history: list[dict[str, Any]], figures: list[str]) -> str:
    """report.md of one run; figures are names under figures/ that exist."""
    parts = [
        f"# {spec.name}",
        f"A {spec.model.encoder.kind}/{spec.model.decoder.kind} VAE with a {spec.model.likelihood.kind} likelihood "
        f"and {spec.model.latent_dim} latent dimensions, trained {metrics['epochs']} epochs on {spec.data.dataset}. "
        "Every number is per image, in nats, summed over pixels and latent dimensions.",
        "## Spec",
        table(spec_summary(spec), ("part", "setting")),
        "## Metrics (test set)",
        table(metrics_rows(metrics), ("metric", "value")),
        "## Observations",
        "\n".join(f"- {note}" for note in observations(metrics, history)),
        "## Figures",
    ]
    for name in figures:
        parts.append(f"![{name}](figures/{name}.png)\n\n*{name}*: {CAPTIONS.get(name, '')}")
    if DOCS.exists():
        parts += ["---", DOCS.read_text().replace("\n# ", "\n## ", 1)]
    return "\n\n".join(parts) + "\n"


_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)


def to_html(text: str, base: Path, title: str) -> str:
    """Markdown to one self-contained HTML page: images inlined as data URIs, TeX kept readable."""
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"MATHSPAN{len(spans) - 1}END"

    body = markdown.markdown(_MATH.sub(keep, text), extensions=["tables", "fenced_code"])
    body = re.sub(r"MATHSPAN(\d+)END", lambda m: _math_html(spans[int(m.group(1))]), body)
    body = re.sub(r'src="([^"]+\.png)"', lambda m: f'src="{_data_uri(base / m.group(1))}"', body)
    return f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"


def _math_html(span: str) -> str:
    display = span.startswith("$$")
    tex = html.escape(span.strip("$").strip())
    return f'<div class="math">{tex}</div>' if display else f'<span class="math">{tex}</span>'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_run_report(run_dir: Path, spec: ExperimentSpec, metrics: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    """Write run_dir/report.md and report.html from the run's saved metrics, history and figures."""
    from vaezoo.figures import FIGURES

    figures = [name for name in FIGURES if (run_dir / "figures" / f"{name}.png").exists()]
    text = run_markdown(spec, metrics, history, figures)
    io.write_text(run_dir / "report.md", text)
    io.write_text(run_dir / "report.html", to_html(text, run_dir, spec.name))
    return run_dir / "report.md"


# ---------------------------------------------------------------------------------------------
# sweeps

SCALARS = (
    ("test_nll_iw", "test NLL (IS)"),
    ("test_neg_elbo", "-ELBO"),
    ("test_recon_nll", "recon NLL"),
    ("test_kl", "KL"),
    ("elbo_is_gap", "ELBO-IS gap"),
    ("active_units", "active units"),
    ("mutual_information", "MI"),
    ("probe_accuracy", "probe acc."),
    ("train_seconds", "train s"),
)
HIGHER_IS_BETTER = {"probe_accuracy", "active_units", "mutual_information"}


def results_rows(points: list[tuple[str, dict[str, Any]]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per run: its name, every varied key and every scalar metric."""
    rows = []
    for (name, varied), metrics in zip(points, results):
        row: dict[str, Any] = {"run": name, **{k: _cell(v) for k, v in varied.items()}}
        row |= {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        rows.append(row)
    return rows


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def grouped(rows: list[dict[str, Any]], varied_keys: list[str]) -> list[dict[str, Any]]:
    """Rows averaged over seeds: per point, the mean and std (ddof 1) of each metric, and n."""
    keys = [k for k in varied_keys if k != "seed"]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for members in groups.values():
        entry: dict[str, Any] = {k: members[0][k] for k in keys} | {"n": len(members)}
        for metric, _ in SCALARS:
            values = [m[metric] for m in members if isinstance(m.get(metric), (int, float))]
            if values:
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                entry[metric], entry[f"{metric}_std"] = mean, var**0.5
        out.append(entry)
    return out


def sweep_table(entries: list[dict[str, Any]], keys: list[str], headline: str) -> str:
    """The markdown results table, sorted by the headline metric (lower first, unless higher is better)."""
    ordered = sorted(entries, key=lambda e: e.get(headline, float("inf")) * (-1 if headline in HIGHER_IS_BETTER else 1))
    header = keys + [label for _, label in SCALARS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in ordered:
        cells = [str(entry[k]) for k in keys]
        for metric, _ in SCALARS:
            value = entry.get(metric)
            std = entry.get(f"{metric}_std")
            digits = 3 if metric == "probe_accuracy" else (0 if metric == "train_seconds" else 2)
            text = fmt(value if isinstance(value, int) else float(value), digits) if value is not None else "—"
            if std and entry.get("n", 1) > 1:
                text += f" ± {fmt(std, digits)}"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


BETTER = {
    "test_nll_iw": "lower",
    "test_neg_elbo": "lower",
    "elbo_is_gap": "lower",
    "active_units": "higher",
    "mutual_information": "higher",
    "probe_accuracy": "higher",
}
TRENDS = ("test_recon_nll", "test_kl", "test_nll_iw", "active_units")


def sweep_observations(entries: list[dict[str, Any]], keys: list[str], headline: str) -> list[str]:
    """Which setting wins on each metric, by how much, and whether the seed spread makes it real;
    with one numeric key varied, how the rate and distortion move along it."""
    if len(entries) < 2:
        return ["Only one point: nothing to compare."]
    labels = dict(SCALARS)
    notes = []
    for metric in sorted(BETTER, key=lambda m: m != headline):
        present = [e for e in entries if isinstance(e.get(metric), (int, float))]
        if len(present) < 2:
            continue
        ranked = sorted(present, key=lambda e: e[metric], reverse=BETTER[metric] == "higher")
        best, second = ranked[0], ranked[1]
        gap = abs(best[metric] - second[metric])
        if gap == 0:
            notes.append(f"**{labels[metric]}** ({BETTER[metric]} is better): {_label(best, keys)} and {_label(second, keys)} tie at {best[metric]:.4g}.")
            continue
        note = f"**{labels[metric]}** ({BETTER[metric]} is better): {_label(best, keys)} wins with {best[metric]:.4g}, ahead of {_label(second, keys)} by {gap:.3g}"
        notes.append(note + _significance(best, second, metric, gap) + ".")
    notes += _trend_notes(entries, keys, labels)
    if all(e.get("n", 1) < 2 for e in entries):
        notes.append("One seed per point: these differences carry no seed-to-seed error bars (add `seeds:` to the sweep to get them).")
    return notes


def _trend_notes(entries: list[dict[str, Any]], keys: list[str], labels: dict[str, str]) -> list[str]:
    """Along a single numeric varied key: each metric's values from its smallest to its largest setting."""
    varied = [k for k in keys if k != "seed"]
    if len(varied) != 1 or not all(isinstance(e.get(varied[0]), (int, float)) for e in entries):
        return []
    key = varied[0]
    ordered = sorted(entries, key=lambda e: e[key])
    notes = []
    for metric in TRENDS:
        values = [e.get(metric) for e in ordered]
        if any(not isinstance(v, (int, float)) for v in values):
            continue
        steps = [b - a for a, b in zip(values, values[1:])]
        shape = (
            "rises steadily" if all(d > 0 for d in steps)
            else "falls steadily" if all(d < 0 for d in steps)
            else "never falls" if all(d >= 0 for d in steps)
            else "never rises" if all(d <= 0 for d in steps)
            else "is not monotonic"
        )
        notes.append(
            f"As {key} goes from {ordered[0][key]} to {ordered[-1][key]}, {labels[metric]} {shape}: "
            + ", ".join(f"{v:.4g}" for v in values)
            + "."
        )
    return notes


def _label(entry: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={entry[k]}" if k != "variant" else str(entry[k]) for k in keys if k != "seed")


def _significance(best: dict[str, Any], second: dict[str, Any], metric: str, gap: float) -> str:
    n1, n2 = best.get("n", 1), second.get("n", 1)
    if n1 < 2 or n2 < 2:
        return ""
    se = (best[f"{metric}_std"] ** 2 / n1 + second[f"{metric}_std"] ** 2 / n2) ** 0.5
    verdict = "larger than" if gap > 2 * se else "within"
    return f"; the difference is {verdict} twice its standard error across seeds ({2 * se:.3g})"


def write_sweep_report(
    name: str, headline: str, points: list[tuple[str, dict[str, Any]]], results: list[dict[str, Any]], sweep_dir: Path
) -> Path:
    """results.csv, results.md, comparison figures and report.md / report.html of a finished sweep.

    `points` are (run folder name, varied keys) pairs; everything is read from the saved runs.
    """
    from vaezoo.figures import COMPARISON_KINDS, save_comparison_grid, save_curves_comparison, save_rate_distortion

    rows = results_rows(points, results)
    keys = list(points[0][1]) if points else []
    _write_csv(sweep_dir / "results.csv", rows)
    entries = grouped(rows, keys) if "seed" in keys else rows
    shown_keys = [k for k in keys if k != "seed"] if "seed" in keys else keys
    shown_keys = shown_keys or ["run"]
    k_values = sorted({r.get("iw_samples") for r in results})
    title = (
        f"{name}: test set, per image, nats summed over pixels and latents (beta = 1); "
        f"IS with K = {', '.join(map(str, k_values))}; binarize "
        f"{', '.join(sorted({r.get('binarize', '?') for r in results}))}"
        + ("; mean ± std over seeds" if "seed" in keys else "")
    )
    table_md = sweep_table(entries, shown_keys, headline)
    io.write_text(sweep_dir / "results.md", f"# {title}\n\n{table_md}\n")
    figure_dir = sweep_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    labelled = [(run, sweep_dir / run) for run, _ in points]
    for kind in COMPARISON_KINDS:
        save_comparison_grid(kind, labelled, figure_dir / f"{kind}_grid.png")
    histories = [(name, io.read_jsonl(run / "history.jsonl")) for name, run in labelled]
    save_curves_comparison(histories, figure_dir / "curves_grid.png")
    save_rate_distortion(
        [(run, r["test_kl"], r["test_recon_nll"]) for (run, _), r in zip(points, results)], figure_dir / "rate_distortion.png"
    )
    varied = {k: sorted({json.dumps(v[k]) for _, v in points}) for k in keys}
    parts = [
        f"# Sweep {name}",
        "What varied: " + "; ".join(f"`{k}` in {', '.join(v)}" for k, v in varied.items()) + f" ({len(points)} runs).",
        f"## Results\n\n{title}. Sorted by `{headline}`.\n\n{table_md}",
        "## Observations\n\n" + "\n".join(f"- {n}" for n in sweep_observations(entries, shown_keys, headline)),
        "## Figures",
    ]
    for path in sorted(figure_dir.glob("*.png")):
        parts.append(f"![{path.stem}](figures/{path.name})\n\n*{path.stem}*")
    text = "\n\n".join(parts) + "\n"
    io.write_text(sweep_dir / "report.md", text)
    io.write_text(sweep_dir / "report.html", to_html(text, sweep_dir, name))
    return sweep_dir / "report.md"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    io.write_text(path, buffer.getvalue())


def load_results_table(sweep_dir: Path) -> Any:
    """results.md of a sweep as a rich Table, for the console."""
    from rich.table import Table

    lines = (sweep_dir / "results.md").read_text().splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    table = Table(title=lines[0].lstrip("# "), title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows[2:]:
        table.add_row(*row)
    return table
