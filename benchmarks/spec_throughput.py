"""Training throughput of example specs on this machine, relative to the classic 784-400-20 model
measured in the same run: images/s of the training step (forward, backward, Adam) at each spec's
batch size, on random binary batches (no data pipeline), alternating specs for `--repeats` rounds.

    python -m benchmarks.spec_throughput experiments/mnist-conv.yaml experiments/mnist-resnet.yaml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.common import classic_spec, header, median, write
from vaezoo.spec.build import build_kl_weighting, build_model, build_objective
from vaezoo.spec.experiment import ExperimentSpec, load_spec


def step_seconds(spec: ExperimentSpec, steps: int) -> float:
    """Median seconds of one training step of `spec` on the CPU."""
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, (1, 28, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    objective, weighting = build_objective(spec, 60000), build_kl_weighting(spec)
    x = torch.bernoulli(torch.full((spec.train.batch_size, 1, 28, 28), 0.15))
    times = []
    for i in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        terms = objective.terms(model, x, 1.0, weighting)
        optimizer.zero_grad()
        terms.loss.mean().backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per spec and round")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    specs = {"classic 784-400-20 (reference)": classic_spec()} | {p.stem: load_spec(p) for p in args.specs}
    seconds: dict[str, list[float]] = {name: [] for name in specs}
    for _ in range(args.repeats):
        for name, spec in specs.items():
            seconds[name].append(step_seconds(spec, args.steps))
    reference = median(seconds["classic 784-400-20 (reference)"]) / 128
    lines = header("Training-step throughput of example specs (CPU)", torch.device("cpu"))
    lines += [
        (
            f"Median step time over {args.repeats} alternating rounds of {args.steps} steps (forward, backward, "
            "Adam) on a random binary batch at the spec's batch size; no data pipeline, no evaluation."
        ),
        "",
        "| spec | batch | images/s | relative to the classic model |",
        "|---|---|---|---|",
    ]
    for name, spec in specs.items():
        per_image = median(seconds[name]) / spec.train.batch_size
        lines.append(f"| {name} | {spec.train.batch_size} | {1 / per_image:,.0f} | {reference / per_image:.3f}x |")
    write("spec_throughput_cpu.md", lines)


if __name__ == "__main__":
    main()
