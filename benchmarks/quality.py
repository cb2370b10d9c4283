"""Test NLL of the paper specs against the published numbers (needs a GPU; runs unattended).

Each spec is trained and evaluated with `vaezoo run` semantics (resumable: rerunning after an
interruption continues where it stopped), then the table of measured vs published numbers is
written to benchmarks/results/quality.md.

    VAEZOO_DATA=../shared/data python -m benchmarks.quality            # every experiments/paper-*.yaml
    python -m benchmarks.quality --allow-cpu --set train.epochs=1 --set eval.iw_samples=10   # a smoke test
    python -m benchmarks.quality --table-only                          # the table of the runs as they stand
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks.common import header, write
from vaezoo import io
from vaezoo.errors import VaezooError
from vaezoo.runner import run
from vaezoo.spec import ExperimentSpec, load_spec

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# name: (published test NLL in nats, source, target for vaezoo where an issue set one)
PUBLISHED = {
    "paper-vae": (86.76, "Burda et al. 2015, VAE, 1 stochastic layer, k = 1", 86.5),
    "paper-iwae": (84.78, "Burda et al. 2015, IWAE, 1 stochastic layer, k = 50", 84.5),
    "paper-conv": (81.08, "Kingma et al. 2016, ResNet VAE, 1 latent layer", 80.5),
    "paper-iaf": (79.10, "Kingma et al. 2016, ResNet VAE + IAF", None),
    "paper-vamp": (85.57, "Tomczak & Welling 2018, VAE + VampPrior, 1 stochastic layer", None),
    "paper-vae2": (85.33, "Burda et al. 2015, VAE, 2 stochastic layers, k = 1", None),
    "paper-lvae": (81.74, "Sonderby et al. 2016, LVAE, 5 stochastic layers", None),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="spec files (default: experiments/paper-*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every spec")
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (smoke tests only)")
    parser.add_argument(
        "--table-only", action="store_true", help="train nothing: tabulate the runs under --out as they stand"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available() and not (args.allow_cpu or args.table_only):
        print("quality: no CUDA device; these runs need a GPU (use --allow-cpu for a smoke test)", file=sys.stderr)
        return 2
    overrides = args.set + ([] if torch.cuda.is_available() or args.table_only else ["train.device=cpu"])
    paths = [Path(p) for p in args.specs] or sorted(EXPERIMENTS.glob("paper-*.yaml"))
    try:
        specs = [load_spec(path, overrides) for path in paths]
        for spec in [] if args.table_only else specs:
            run(spec, Path(args.out), resume=True)
    except VaezooError as error:
        print(f"quality: error: {error}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lines = header("Test NLL against published numbers (dynamically binarized MNIST)", device)
    lines += [
        "Per image, nats, summed over pixels; importance-weighted with K samples (± its standard error over test",
        "images); split as the spec says. Training seconds are the training steps' own, summed over resumed calls.",
        "",
        "| spec | objective | epochs | split | K | test NLL | test -ELBO | published | target | met | train s | IS s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(spec, Path(args.out) / spec.name) for spec in specs]
    write("quality.md" if device.type == "cuda" else "quality_smoke_cpu.md", lines)
    return 0


def table_row(spec: ExperimentSpec, run_dir: Path) -> str:
    """One spec's line: its measured numbers if the run has finished, else how far it got."""
    published, source, target = PUBLISHED.get(spec.name.split("@")[0], (None, "", None))
    paper = "—" if published is None else f"{published:.2f} ({source})"
    start = f"| {spec.name} | {spec.objective.kind} "
    metrics_path, history_path = run_dir / "metrics.json", run_dir / "history.jsonl"
    if not metrics_path.exists():
        done = len(io.read_jsonl(history_path)) if history_path.exists() else 0
        return (
            start
            + f"| {done} of {spec.train.epochs} (unfinished) | — | — | — | — | {paper} | {target or '—'} | not run to the end | — | — |"
        )
    m = json.loads(metrics_path.read_text())
    met = "—" if target is None else ("yes" if m["test_nll_iw"] <= target else "no")
    return start + (
        f"| {m['epochs']} | {m['split']} | {m['iw_samples']} | {m['test_nll_iw']:.2f} ± {m['test_nll_iw_stderr']:.2f} | "
        f"{m['test_neg_elbo']:.2f} | {paper} | {target or '—'} | {met} | {m['train_seconds']:.0f} | {m['iw_seconds']:.1f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
