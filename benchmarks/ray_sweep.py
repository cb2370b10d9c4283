"""A 2x2 sweep (beta x latent size) on MNIST through `--executor ray` against a Ray head on this
machine, next to `--executor local --jobs 2` on the same cores, back to back, alternating within
each repeat. Both write full run folders (figures and reports included); the table also checks that
they give the same numbers.

    python -m benchmarks.ray_sweep --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks.common import header, median, write

ROOT = Path(__file__).resolve().parent.parent


def sweep_file(folder: Path, epochs: int) -> Path:
    sweep = {
        "name": "ray-bench",
        "base": str(ROOT / "experiments" / "quickstart.yaml"),
        "set": {"train.epochs": epochs, "train.device": "cpu", "eval.iw_samples": 100},
        "grid": {"kl.beta": [0.5, 1.0], "model.latent_dim": [10, 20]},
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def start_head(env: dict[str, str], temp: Path) -> str:
    ray = Path(sys.executable).with_name("ray")
    started = subprocess.run(
        [str(ray), "start", "--head", "--port=0", "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return re.search(r"--address='([^']+)'", started.stdout + started.stderr).group(1)


def timed_sweep(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaezoo", "sweep", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def numbers(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "results.csv").open() as handle:
        return [{k: v for k, v in row.items() if "second" not in k} for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's socket paths have a length limit
    sweep = sweep_file(work, args.epochs)
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "MPLBACKEND": "Agg"}
    env |= {"RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    address = start_head(env, work / "ray")
    head_seconds = time.perf_counter() - start
    times: dict[str, list[float]] = {"local --jobs 2": [], "ray (local head, 2 CPUs)": []}
    try:
        for repeat in range(args.repeats):
            out = work / f"out{repeat}"
            times["local --jobs 2"].append(timed_sweep([str(sweep), "--out", str(out / "local"), "--jobs", "2"], env))
            ray_args = [str(sweep), "--out", str(out / "ray"), "--executor", "ray", "--address", address]
            times["ray (local head, 2 CPUs)"].append(timed_sweep(ray_args, env))
            same = numbers(out / "local" / "ray-bench") == numbers(out / "ray" / "ray-bench")
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("ray")), "stop", "--force"], check=False, capture_output=True
        )
    local = median(times["local --jobs 2"])
    lines = header("A 2x2 sweep through Ray against the local executor", torch.device("cpu"))
    lines += [
        (
            f"- sweep: quickstart.yaml with train.epochs={args.epochs}, K = 100, kl.beta x model.latent_dim = 2 x 2, "
            f"full run folders (figures, reports); {args.repeats} repeats, alternating"
        ),
        f"- Ray head start-up (`ray start --head --num-cpus=2`, not in the times): {head_seconds:.1f} s",
        f"- same results.csv numbers (timings aside) from both executors: {'yes' if same else 'NO'}",
        "",
        "| executor | wall times (s) | median (s) | vs local |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {name} | {runs} | {median(values):.1f} | {median(values) / local:.2f}x |")
    write("ray_sweep_cpu.md", lines)


if __name__ == "__main__":
    main()
