"""A finished run as a notebook shows it (`Run._repr_html_`): its name, its key numbers with what they
are (per image, in nats, the split, K) and its sample and reconstruction figures inline.

Everything here may come from someone else's folder (the name from a spec, the path, the metrics, the
PNGs), so every value is escaped for HTML and only a regular PNG file, read without following a link,
is shown as an image; anything else is named by its path.
"""

from __future__ import annotations

import base64
from pathlib import Path

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.evaluate.records import METRIC, RunMetrics
from vaezoo.outputs import escape

#: the numbers a notebook shows of a run, in this order (labels, units and digits from the metric table)
SHOWN = (
    "test_nll_iw",
    "test_neg_elbo",
    "test_recon_nll",
    "test_kl",
    "test_bits_per_dim",
    "active_units",
    "mutual_information",
    "probe_accuracy",
    "test_class_error",  # a semi-supervised run's (M2), None elsewhere
    "code_perplexity",  # a VQ-VAE's, None elsewhere
)
#: the figures shown inline, where the run has them
FIGURES = ("samples", "reconstructions")
#: a PNG larger than this is named rather than inlined (vaezoo's figures are a few hundred kB at most)
MAX_INLINE_BYTES = 4 * 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_html(name: str, path: Path, metrics: RunMetrics) -> str:
    """The HTML of a finished run for a notebook: a table of its numbers and its figures."""
    e = escape.html
    rows = "".join(_row(key, metrics) for key in SHOWN if metrics.value(key) is not None)
    caption = (
        f"test set ({e(metrics.split)}); per image, in nats summed over pixels and latent dimensions (beta = 1); "
        + (
            f"the NLL of {e(metrics.likelihood_of)}, importance-weighted with K = {e(metrics.iw_samples)}; "
            if metrics.nll_note is None
            else f"the NLL is {e(metrics.nll_note)}; "
        )
        + f"{e(metrics.nll_kind)}; "
        f"{e(metrics.epochs)} epochs on {e(metrics.device)}"
    )
    figures = "".join(_figure(path / "figures" / f"{kind}.png", kind) for kind in FIGURES)
    return (
        f'<div class="vaezoo-run"><p><strong>vaezoo run {e(name)}</strong> &mdash; <code>{e(path)}</code></p>'
        f'<table><caption style="caption-side:bottom;text-align:left">{caption}</caption>'
        f"<thead><tr><th>metric</th><th>value</th><th>unit</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<div style="display:flex;gap:1em;flex-wrap:wrap">{figures}</div></div>'
    )


def _row(key: str, metrics: RunMetrics) -> str:
    metric = METRIC[key]
    value = metric.format(metrics.value(key))
    if key == "test_nll_iw":
        value += f" ± {metric.format(metrics.test_nll_iw_stderr)}"
    unit = "" if metric.unit == "%" else metric.unit
    e = escape.html
    return f'<tr><td>{e(metric.label)}</td><td style="text-align:right">{e(value)}</td><td>{e(unit)}</td></tr>'


def _figure(png: Path, kind: str) -> str:
    """One figure inline (a data: URI), or its path where it is missing, linked, too large or not a PNG."""
    e = escape.html
    try:
        data = io.read_bytes(png, limit=MAX_INLINE_BYTES, follow_links=False)
    except OutputError:
        data = b""
    if not data.startswith(PNG_SIGNATURE) or png.parent.is_symlink():
        note = "not drawn" if not png.exists() and not png.is_symlink() else "not shown inline"
        return f"<figure><figcaption>{e(kind)}: <code>{e(png)}</code> ({note})</figcaption></figure>"
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure style="margin:0"><img src="{uri}" alt="{e(kind)}" style="max-width:320px">'
        f"<figcaption>{e(kind)}</figcaption></figure>"
    )
