"""A sweep's results: results.csv, results.md (one row per point, mean ± std over seeds), the
comparison figures and report.md / report.html / report.pdf, with observations computed from the numbers.

Point names, varied keys and values and the runs' metrics may come from someone else: each is written
through escape.markdown (table cells, labels and notes are Markdown, which sweep_pdf reads back)."""

from __future__ import annotations

import csv
import io as stdio
import itertools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vaezoo.core import io
from vaezoo.evaluate.records import METRIC, METRICS, Metric, read_history
from vaezoo.outputs.escape import markdown as md
from vaezoo.outputs.escape import markdown_code as md_code
from vaezoo.outputs.escape import unescape_markdown
from vaezoo.outputs.figures import comparison_kinds
from vaezoo.outputs.html_page import to_html
from vaezoo.outputs.paired import paired_section
from vaezoo.outputs.sweep_figures import save_comparison_grid, save_curves_comparison, save_rate_distortion

#: the sweep table's columns, in the metric table's order (throughput is per machine, not per setting)
SWEEP_METRICS = tuple(metric for metric in METRICS if metric.key != "train_images_per_second")
TRENDS = ("test_recon_nll", "test_kl", "test_nll_iw", "active_units")


def results_rows(points: list[tuple[str, dict[str, Any]]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per run: its name, every varied key and every scalar metric."""
    rows = []
    for (name, varied), metrics in zip(points, results):
        row: dict[str, Any] = {"run": name, **{k: _cell(v) for k, v in varied.items()}}
        row |= {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        if metrics.get("layer_kl") is not None:
            row["layer_kl"] = list(metrics["layer_kl"])
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
        # "run" labels the group where nothing but the seed varies (its table has no other column)
        entry: dict[str, Any] = {"run": ", ".join(str(m["run"]) for m in members)}
        entry |= {k: members[0][k] for k in keys} | {"n": len(members)}
        entry["nll_kind"] = members[0].get("nll_kind")  # seeds never change what the NLL is
        entry["kl_estimate"] = members[0].get("kl_estimate")  # nor which KL estimator the model uses
        layers = [m["layer_kl"] for m in members if m.get("layer_kl") is not None]
        if layers:
            entry["layer_kl"] = [sum(values) / len(values) for values in zip(*layers)]
        for metric in SWEEP_METRICS:
            values = [m[metric.key] for m in members if isinstance(m.get(metric.key), (int, float))]
            if values:
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                entry[metric.key], entry[f"{metric.key}_std"] = mean, var**0.5
        out.append(entry)
    return out


def nll_kinds(entries: list[dict[str, Any]]) -> list[str]:
    """The kinds of NLL among the runs (a binary mass, an 8-bit mass, a density, BCE on grey levels)."""
    return sorted({str(e.get("nll_kind")) for e in entries})


def _comparable(metric: Metric) -> bool:
    """Whether values of runs with different NLL kinds may stand in one column or one ranking."""
    return metric.kind == "other"


def _columns(entries: list[dict[str, Any]]) -> list[tuple[Metric, str | None]]:
    """(metric, the NLL kind its column is restricted to): an NLL metric gets a column per kind."""
    kinds = nll_kinds(entries)
    columns: list[tuple[Metric, str | None]] = []
    for metric in SWEEP_METRICS:
        split = not _comparable(metric) and len(kinds) > 1
        columns += [(metric, kind) for kind in kinds] if split else [(metric, None)]
    return columns


def _sort_key(entry: dict[str, Any], headline: str, kinds: list[str]) -> tuple[int, float]:
    metric = METRIC.get(headline)
    sign = -1 if metric is not None and metric.better == "higher" else 1
    value = entry.get(headline)
    return kinds.index(str(entry.get("nll_kind"))), sign * value if isinstance(value, (int, float)) else float("inf")


def sweep_rows(entries: list[dict[str, Any]], keys: list[str], headline: str) -> tuple[list[str], list[list[str]]]:
    """The results table's header and rows, sorted by the headline metric (lower first, unless
    higher is better), with the KL estimator each row trained with, and a hierarchy's KL per layer.

    With runs of several NLL kinds, each NLL metric gets one column per kind and the rows are
    grouped by kind first: a Bernoulli mass is never ranked against a Gaussian density.
    """
    kinds = nll_kinds(entries)
    ordered = sorted(entries, key=lambda e: _sort_key(e, headline, kinds))
    columns = _columns(entries)
    layered = any(entry.get("layer_kl") is not None for entry in entries)
    header = (
        [md(k) for k in keys]
        + ["KL estimate"]
        + [md(metric.short) if kind is None else f"{md(metric.short)} [{md(kind)}]" for metric, kind in columns]
    )
    header += ["KL per layer, bottom first"] if layered else []
    rows = []
    for entry in ordered:
        cells = [md(entry[k]) for k in keys] + [md(entry.get("kl_estimate") or "—")]
        for metric, kind in columns:
            value = entry.get(metric.key) if kind is None or entry.get("nll_kind") == kind else None
            text = metric.format(value)
            std = entry.get(f"{metric.key}_std")
            if value is not None and std and entry.get("n", 1) > 1:
                text += f" ± {metric.format(std)}"
            cells.append(text)
        if layered:
            layer_kl = entry.get("layer_kl")
            cells.append("—" if layer_kl is None else " / ".join(f"{kl:.2f}" for kl in layer_kl))
        rows.append(cells)
    return header, rows


def sweep_table(entries: list[dict[str, Any]], keys: list[str], headline: str) -> str:
    """The markdown results table (see sweep_rows)."""
    header, rows = sweep_rows(entries, keys, headline)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def sweep_observations(entries: list[dict[str, Any]], keys: list[str], headline: str) -> list[str]:
    """Which setting wins on each metric, by how much, and whether the seed spread makes it real;
    with one numeric key varied, how the rate and distortion move along it. NLL metrics are ranked
    only among runs whose NLL is of the same kind."""
    if len(entries) < 2:
        return ["Only one point: nothing to compare."]
    kinds = nll_kinds(entries)
    notes = []
    if len(kinds) > 1:
        notes.append(
            "These runs' NLLs are of different kinds ("
            + "; ".join(map(md, kinds))
            + "): NLL-based numbers are compared "
            "only within a kind, never across."
        )
    ranked_metrics = [m for m in SWEEP_METRICS if m.better is not None]
    for metric in sorted(ranked_metrics, key=lambda m: m.key != headline):
        groups = (
            [(None, entries)]
            if _comparable(metric)
            else [(k, [e for e in entries if str(e.get("nll_kind")) == k]) for k in kinds]
        )
        for kind, members in groups:
            note = _winner(metric, members, keys, kind if len(kinds) > 1 else None)
            if note:
                notes.append(note)
    notes += _trend_notes(entries, keys)
    if all(e.get("n", 1) < 2 for e in entries):
        notes.append(
            "One seed per point: these differences carry no seed-to-seed error bars (add `seeds:` to the sweep to get them)."
        )
    return notes


def _winner(metric: Metric, entries: list[dict[str, Any]], keys: list[str], kind: str | None) -> str | None:
    """The best of `entries` on `metric`, ahead of the second by how much; None with fewer than two."""
    present = [e for e in entries if isinstance(e.get(metric.key), (int, float))]
    if len(present) < 2:
        return None
    ranked = sorted(present, key=lambda e: e[metric.key], reverse=metric.better == "higher")
    best, second = ranked[0], ranked[1]
    gap = abs(best[metric.key] - second[metric.key])
    within = f" among runs whose NLL is a {md(kind)}" if kind else ""
    name = f"**{metric.label}** ({metric.better} is better{within})"
    if gap == 0:
        return f"{name}: {point_label(best, keys)} and {point_label(second, keys)} tie at {best[metric.key]:.4g}."
    note = f"{name}: {point_label(best, keys)} wins with {best[metric.key]:.4g}, ahead of {point_label(second, keys)} by {gap:.3g}"
    return note + _significance(best, second, metric.key, gap) + "."


def _trend_notes(entries: list[dict[str, Any]], keys: list[str]) -> list[str]:
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
        steps = [b - a for a, b in itertools.pairwise(values)]
        shape = (
            "rises steadily"
            if all(d > 0 for d in steps)
            else "falls steadily"
            if all(d < 0 for d in steps)
            else "never falls"
            if all(d >= 0 for d in steps)
            else "never rises"
            if all(d <= 0 for d in steps)
            else "is not monotonic"
        )
        notes.append(
            f"As {md(key)} goes from {md(ordered[0][key])} to {md(ordered[-1][key])}, {METRIC[metric].label} {shape}: "
            + ", ".join(f"{v:.4g}" for v in values)
            + "."
        )
    return notes


def point_label(entry: dict[str, Any], keys: list[str]) -> str:
    """A point's varied values, as Markdown."""
    return ", ".join(
        f"{md(k)}={md(entry[k])}" if k not in ("variant", "run") else md(entry[k]) for k in keys if k != "seed"
    )


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
    rows = results_rows(points, results)
    keys = list(points[0][1]) if points else []
    _write_csv(sweep_dir / "results.csv", rows)
    entries = grouped(rows, keys) if "seed" in keys else rows
    shown_keys = [k for k in keys if k != "seed"] if "seed" in keys else keys
    shown_keys = shown_keys or ["run"]
    k_values = sorted({r.get("iw_samples") for r in results})
    title = (
        f"{md(name)}: test set, per image, nats summed over pixels and latents (beta = 1); "
        f"IS with K = {', '.join(map(md, k_values))}; binarize "
        f"{', '.join(md(b) for b in sorted({str(r.get('binarize', '?')) for r in results}))}"
        + ("; mean ± std over seeds" if "seed" in keys else "")
    )
    table_md = sweep_table(entries, shown_keys, headline)
    io.write_text(sweep_dir / "results.md", f"# {title}\n\n{table_md}\n")
    figure_dir = io.ensure_folder(sweep_dir / "figures")
    labelled = [(run, sweep_dir / run) for run, _ in points]
    for kind in comparison_kinds():
        save_comparison_grid(kind, labelled, figure_dir / f"{kind}_grid.png")
    histories = [(name, [row.to_json() for row in read_history(run)]) for name, run in labelled]
    save_curves_comparison(histories, figure_dir / "curves_grid.png")
    save_rate_distortion(
        [(run, r["test_kl"], r["test_recon_nll"]) for (run, _), r in zip(points, results)],
        figure_dir / "rate_distortion.png",
    )
    varied = {k: sorted({json.dumps(v[k]) for _, v in points}) for k in keys}
    notes = sweep_observations(entries, shown_keys, headline)
    parts = [
        f"# Sweep {md(name)}",
        "What varied: "
        + "; ".join(f"{md_code(k)} in {', '.join(map(md, v))}" for k, v in varied.items())
        + f" ({len(points)} runs).",
        f"## Results\n\n{title}. Sorted by {md_code(headline)}.\n\n{table_md}",
        paired_section(points, sweep_dir),
        "## Observations\n\n" + "\n".join(f"- {n}" for n in notes),
        "## Figures",
    ]
    for path in sorted(figure_dir.glob("*.png")):
        parts.append(f"![{md(path.stem)}](figures/{quote(path.name)})\n\n*{md(path.stem)}*")
    text = "\n\n".join(part for part in parts if part is not None) + "\n"
    io.write_text(sweep_dir / "report.md", text)
    io.write_text(sweep_dir / "report.html", to_html(text, sweep_dir, name))
    from vaezoo.outputs.sweep_pdf import write_sweep_pdf  # sweep_pdf builds on this module's tables

    first = points[0][0] if points else ""
    report = {"name": name, "headline": headline, "entries": entries, "keys": shown_keys, "results": results}
    write_sweep_pdf(sweep_dir, first, **report, varied=varied, caption=title, notes=notes)
    return sweep_dir / "report.md"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows([{k: _cell(v) for k, v in row.items()} for row in rows])
    io.write_text(path, buffer.getvalue())


def load_results_table(sweep_dir: Path) -> Any:
    """results.md of a sweep as a rich Table, for the console."""
    from rich.table import Table

    lines = (sweep_dir / "results.md").read_text().splitlines()
    rows = [
        [unescape_markdown(cell.strip()) for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        for line in lines
        if line.startswith("|")
    ]
    table = Table(title=lines[0].lstrip("# "), title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows[2:]:
        table.add_row(*row)
    return table
