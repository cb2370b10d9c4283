"""Test NLL of the paper specs against the published numbers (needs a GPU; runs unattended).

Each spec is trained and evaluated with `vaezoo run` semantics (resumable: rerunning after an
interruption continues where it stopped), then the table of measured vs published numbers is
written to benchmarks/results/quality.md.

    VAEZOO_DATA=../shared/data python -m benchmarks.quality            # every experiments/paper-*.yaml
    python -m benchmarks.quality --allow-cpu --set train.epochs=1 --set eval.iw_samples=10   # a smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import header, write
from vaezoo.errors import VaezooError
from vaezoo.runner import run
from vaezoo.spec import load_spec

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# name: (published test NLL in nats, source, target for vaezoo)
PUBLISHED = {
    "paper-vae": (86.76, "Burda et al. 2015, VAE, 1 stochastic layer, k = 1", 86.5),
    "paper-iwae": (84.78, "Burda et al. 2015, IWAE, 1 stochastic layer, k = 50", 84.5),
    "paper-conv": (81.08, "Kingma et al. 2016, ResNet VAE, 1 latent layer", 80.5),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="spec files (default: experiments/paper-*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every spec")
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (smoke tests only)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("quality: no CUDA device; these runs need a GPU (use --allow-cpu for a smoke test)", file=sys.stderr)
        return 2
    overrides = args.set + ([] if torch.cuda.is_available() else ["train.device=cpu"])
    paths = [Path(p) for p in args.specs] or sorted(EXPERIMENTS.glob("paper-*.yaml"))
    rows = []
    try:
        for path in paths:
            spec = load_spec(path, overrides)
            start = time.perf_counter()
            metrics = run(spec, Path(args.out), resume=True)
            rows.append((spec, metrics, time.perf_counter() - start))
    except VaezooError as error:
        print(f"quality: error: {error}", file=sys.stderr)
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lines = header("Test NLL against published numbers (dynamically binarized MNIST)", device)
    lines += [
        "Per image, nats, summed over pixels; importance-weighted with K samples; split as the spec says.",
        "",
        "| spec | objective | epochs | split | K | test NLL | published | target | met | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, metrics, seconds in rows:
        published, source, target = PUBLISHED.get(spec.name.split("@")[0], (None, "", None))
        met = "—" if target is None else ("yes" if metrics["test_nll_iw"] <= target else "no")
        lines.append(
            f"| {spec.name} | {spec.objective.kind} | {metrics['epochs']} | {metrics['split']} | {metrics['iw_samples']} | "
            f"{metrics['test_nll_iw']:.2f} ± {metrics['test_nll_iw_stderr']:.2f} | "
            f"{'—' if published is None else f'{published:.2f} ({source})'} | {'—' if target is None else target} | {met} | {seconds:.0f} |"
        )
    write("quality.md" if device.type == "cuda" else "quality_smoke_cpu.md", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
