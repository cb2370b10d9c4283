"""Test NLL of the paper specs against the published numbers, on whatever machine this is.

On a GPU every experiments/paper-*.yaml runs; on a CPU, those that fit it (`Paper.fits_cpu`), the
others listed as needing a GPU. Each spec is trained and evaluated with `vaezoo run` semantics
(resumable: rerunning after an interruption continues from the last checkpoint), then the table of
measured against published numbers is written to benchmarks/results/quality_<cuda|cpu>.md, with each
finished run's metrics.json, spec.yaml, training curves and prior samples beside it.

    VAEZOO_DATA=../shared/data python -m benchmarks.quality            # the paper specs that fit here
    python -m benchmarks.quality --table-only --out runs/quality        # the table of the runs as they stand
    python -m benchmarks.quality --smoke --set train.epochs=1 --set eval.iw_samples=10   # a smoke test
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.common import RESULTS, header, write
from vaezoo.core import io
from vaezoo.core.errors import VaezooError
from vaezoo.evaluate.records import RunMetrics, finished_metrics
from vaezoo.runs.runner import run
from vaezoo.spec.experiment import ExperimentSpec, load_spec

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@dataclass(frozen=True)
class Paper:
    """A paper spec's published test NLL (nats), where it comes from, how close vaezoo must come, and
    whether its protocol fits the 2-core CPU in a session (measured: paper-vae's 3280 epochs take
    about 2.5 hours on one core, 1.7 on two)."""

    published: float
    source: str
    tolerance: float | None = None  # |ours - published| within this meets the target; None: no target set
    fits_cpu: bool = False


PAPERS = {
    "paper-vae": Paper(86.76, "Burda et al. 2015, VAE, 1 stochastic layer, k = 1", 0.3, fits_cpu=True),
    "paper-iwae": Paper(84.78, "Burda et al. 2015, IWAE, 1 stochastic layer, k = 50", 0.3),
    "paper-conv": Paper(81.08, "Kingma et al. 2016, ResNet VAE, 1 latent layer", 0.6),
    "paper-iaf": Paper(79.10, "Kingma et al. 2016, ResNet VAE + IAF"),
    "paper-vamp": Paper(85.57, "Tomczak & Welling 2018, VAE + VampPrior, 1 stochastic layer", 0.5),
    "paper-vae2": Paper(85.33, "Burda et al. 2015, VAE, 2 stochastic layers, k = 1"),
    "paper-lvae": Paper(81.74, "Sonderby et al. 2016, LVAE, 5 stochastic layers"),
}
COLUMNS = (
    "| spec | objective | epochs | split | K | test NLL | test -ELBO | published | gap | target | met | train s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="spec files (default: experiments/paper-*.yaml that fit here)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every spec")
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--smoke", action="store_true", help="any spec on this machine; results to quality_smoke_*")
    parser.add_argument("--table-only", action="store_true", help="train nothing: tabulate the runs under --out")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    overrides = args.set + ([] if device.type == "cuda" else ["train.device=cpu"])
    paths = [Path(p) for p in args.specs] or sorted(EXPERIMENTS.glob("paper-*.yaml"))
    try:
        specs = [load_spec(path, overrides) for path in paths]
    except VaezooError as error:
        print(f"quality: error: {error}", file=sys.stderr)
        return 2
    runnable = [s for s in specs if args.smoke or device.type == "cuda" or paper(s).fits_cpu]
    try:
        for spec in [] if args.table_only else runnable:
            run(spec, Path(args.out), resume=True)
    except VaezooError as error:
        print(f"quality: error: {error}", file=sys.stderr)
        return 2
    name = f"quality_{'smoke_' if args.smoke else ''}{device.type}"
    lines = header("Test NLL against published numbers (dynamically binarized MNIST)", device)
    lines += [
        "Per image, nats, summed over pixels; importance-weighted with K samples (± its standard error over test",
        "images); split as the spec says; gap = ours - published. Training seconds are the training steps' own,",
        "summed over resumed calls.",
        "",
        *COLUMNS,
    ]
    lines += [table_row(spec, Path(args.out) / spec.name, spec in runnable) for spec in specs]
    write(f"{name}.md", lines)
    for spec in specs:
        keep_run_files(Path(args.out) / spec.name, RESULTS / name / spec.name)
    return 0


def paper(spec: ExperimentSpec) -> Paper:
    return PAPERS.get(spec.name.split("@")[0], Paper(float("nan"), "no published number"))


def table_row(spec: ExperimentSpec, run_dir: Path, runnable: bool) -> str:
    """One spec's line: its measured numbers if the run has finished, else how far it got or why not."""
    known = paper(spec)
    published = f"{known.published:.2f} ({known.source})"
    target = "—" if known.tolerance is None else f"within {known.tolerance:g}"
    start = f"| {spec.name} | {spec.objective.kind} "
    if not (run_dir / "metrics.json").exists():
        done = len(io.read_jsonl(run_dir / "history.jsonl")) if (run_dir / "history.jsonl").exists() else 0
        why = f"{done} of {spec.train.epochs} (unfinished)" if runnable else "not run: needs a GPU"
        return start + f"| {why} | — | — | — | — | {published} | — | {target} | — | — |"
    m: RunMetrics = finished_metrics(run_dir)
    gap = m.test_nll_iw - known.published
    met = "—" if known.tolerance is None else ("yes" if abs(gap) <= known.tolerance or gap < 0 else "no")
    return start + (
        f"| {m.epochs} | {m.split} | {m.iw_samples} | {m.test_nll_iw:.2f} ± {m.test_nll_iw_stderr:.2f} | "
        f"{m.test_neg_elbo:.2f} | {published} | {gap:+.2f} | {target} | {met} | {m.train_seconds:.0f} |"
    )


def keep_run_files(run_dir: Path, keep: Path) -> None:
    """A finished run's numbers, spec, training curves and prior samples, beside the results table."""
    if not (run_dir / "metrics.json").exists():
        return
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json", "spec.yaml", "history.jsonl", "figures/curves.png", "figures/samples.png"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, keep / Path(name).name)


if __name__ == "__main__":
    sys.exit(main())
