"""The whole command, start to finish, for the classic 784-400-20 Bernoulli VAE: vaezoo against
pytorch/examples' `vae/main.py` (run as a script) and pythae's TrainingPipeline (the `bench` extra).

Each tool runs as its own process, the way a user would start it, timed from launch to exit:
- vaezoo: `python -m vaezoo run experiments/mnist-mlp.yaml --set train.epochs=N --set eval.iw_samples=1`,
  which also evaluates (test ELBO, K = 1, latent statistics, probe) and writes its figures and report;
- pytorch/examples: `main.py --epochs N` (its own data pipeline: 60,000 grey-level images, BCE; a test
  pass and two PNGs each epoch), from a checkout given by `--examples` (its code is not copied here);
- pythae: `benchmarks/pythae_pipeline.py` on a statically binarized copy of vaezoo's 50,000 images.
The runs alternate (tool by tool within each repeat), and the medians and ratios are reported. Every
trained model is then scored by one shared evaluator: the single-sample test -ELBO on vaezoo's fixed
binary test set. The model's forward+backward ceiling on this machine (plain torch on a random batch)
is measured in the same run.

    VAEZOO_DATA=../shared/data python -m benchmarks.end_to_end --examples PATH/TO/examples/vae/main.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import classic_spec, header, median, write
from vaezoo import data as vdata
from vaezoo.evaluate.evaluation import elbo_means
from vaezoo.evaluate.records import finished_metrics
from vaezoo.runs.saved_runs import load_run
from vaezoo.spec.build import build_model

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("vaezoo", "pytorch/examples", "pythae")


def commands(tool: str, epochs: int, work: Path, examples: Path, repeat: int) -> tuple[list[str], Path, Path]:
    """(argv, working directory, where the trained weights end up) for one run of one tool."""
    out = work / f"{tool.replace('/', '-')}-{epochs}-{repeat}"
    out.mkdir(parents=True)
    if tool == "vaezoo":
        argv = [sys.executable, "-m", "vaezoo", "run", str(ROOT / "experiments/mnist-mlp.yaml"), "--out", str(out)]
        argv += ["--set", f"train.epochs={epochs}", "--set", "eval.iw_samples=1"]
        return argv, ROOT, out / "mnist-mlp"
    weights = out / "weights.pt"
    if tool == "pythae":
        argv = [sys.executable, "-m", "benchmarks.pythae_pipeline", "--data", str(work / "static-train.pt")]
        argv += ["--epochs", str(epochs), "--out", str(out / "pythae"), "--weights", str(weights)]
        return argv, ROOT, weights
    # main.py reads ../data and writes results/: run it from a folder laid out that way, and save its
    # global `model` when it returns (it keeps no checkpoint of its own)
    (out / "run" / "results").mkdir(parents=True)
    (out / "data").symlink_to(vdata.default_root().resolve())
    save = (
        f"import runpy, sys, torch; sys.argv = ['main.py', '--epochs', '{epochs}']; "
        f"torch.save(runpy.run_path({str(examples)!r}, run_name='__main__')['model'].state_dict(), {str(weights)!r})"
    )
    return [sys.executable, "-c", save], out / "run", weights


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        argv, check=False, cwd=cwd, capture_output=True, text=True, env=os.environ | {"MPLBACKEND": "Agg"}
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{argv} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return seconds


def classic_model(weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    """vaezoo's classic model holding weights named as pytorch/examples names them (fc1 ... fc4)."""
    model = build_model(classic_spec().model, (1, 28, 28))
    model.load_state_dict(
        {
            "encoder.features.1.0.weight": weights["fc1.weight"],
            "encoder.features.1.0.bias": weights["fc1.bias"],
            "posterior.head.weight": torch.cat([weights["fc21.weight"], weights["fc22.weight"]]),
            "posterior.head.bias": torch.cat([weights["fc21.bias"], weights["fc22.bias"]]),
            "decoder.net.0.0.weight": weights["fc3.weight"],
            "decoder.net.0.0.bias": weights["fc3.bias"],
            "decoder.net.1.weight": weights["fc4.weight"],
            "decoder.output.bias": weights["fc4.bias"].view(1, 28, 28),
        }
    )
    return model


def shared_test_elbo(tool: str, trained: Path, test: torch.Tensor) -> float:
    """The single-sample test -ELBO (nats/image, fixed noise) of a trained model, the same way for every tool."""
    if tool == "vaezoo":
        model = load_run(trained, "cpu").model
    else:
        model = classic_model(torch.load(trained, map_location="cpu"))
    return elbo_means(model, test, 1000).neg_elbo


def ceiling(batch_size: int = 128, seconds: float = 3.0) -> float:
    """Images/s of the model's forward+backward alone (plain torch, a random binary batch, no optimizer)."""
    torch.manual_seed(0)
    fc1, fc2, fc3, fc4 = (torch.nn.Linear(a, b) for a, b in [(784, 400), (400, 40), (20, 400), (400, 784)])
    x = torch.bernoulli(torch.full((batch_size, 784), 0.15))

    def step() -> None:
        mu, logvar = fc2(F.relu(fc1(x))).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(fc4(F.relu(fc3(z))), x, reduction="sum")
        (recon - 0.5 * (1 + logvar - mu.square() - logvar.exp()).sum()).backward()

    for _ in range(20):
        step()
    times = []
    while sum(times) < seconds:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch_size / median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path, required=True, help="pytorch/examples' vae/main.py")
    parser.add_argument("--epochs", default="3,10", help="comma-separated epoch counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    epoch_counts = [int(n) for n in args.epochs.split(",")]

    # static: pythae's one binarized copy; the fixed binary test set is the same under either binarization
    data = vdata.load(classic_spec().data.model_copy(update={"binarize": "static"}), torch.device("cpu"))
    test = data.test_images
    seconds: dict[tuple[str, int], list[float]] = {}
    elbos: dict[tuple[str, int], list[float]] = {}
    rates: list[float] = []  # vaezoo's training images/s, against the ceiling
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        torch.save((data.train_images // 255).contiguous(), work / "static-train.pt")  # 0/1, uint8
        for repeat in range(args.repeats):
            for epochs in epoch_counts:
                for tool in TOOLS:
                    argv, cwd, trained = commands(tool, epochs, work, args.examples.resolve(), repeat)
                    seconds.setdefault((tool, epochs), []).append(timed(argv, cwd))
                    elbos.setdefault((tool, epochs), []).append(shared_test_elbo(tool, trained, test))
                    if tool == "vaezoo":
                        rates.append(finished_metrics(trained).train_images_per_second)
                    print(tool, epochs, repeat, f"{seconds[tool, epochs][-1]:.1f} s", flush=True)
    write("end_to_end_cpu.md", report(seconds, elbos, epoch_counts, args.repeats, ceiling(), median(rates)))


def report(seconds, elbos, epoch_counts: list[int], repeats: int, ceiling_rate: float, train_rate: float) -> list[str]:
    lines = header("The whole command, launch to exit: vaezoo against pytorch/examples and pythae", torch.device("cpu"))
    lines += [
        "The classic 784-400-20 Bernoulli VAE, batch 128, Adam lr 1e-3. Each tool is one process from launch to",
        f"exit, the tools alternating within each of {repeats} repeats; medians, with every run's seconds beside them.",
        "Test -ELBO: one shared evaluator (single sample, fixed noise) on vaezoo's fixed binary test set, median over",
        "the repeats. vaezoo trains on dynamically binarized digits and also evaluates (K = 1), draws its figures and",
        "writes its report; pythae trains on one static binarization of the same 50,000 images; pytorch/examples",
        "trains on the 60,000 grey-level images with BCE, as the script does.",
        "",
        "| epochs | tool | median seconds | runs (s) | vaezoo's speed-up | test -ELBO (nats/image) |",
        "|---|---|---|---|---|---|",
    ]
    for epochs in epoch_counts:
        ours = median(seconds["vaezoo", epochs])
        for tool in TOOLS:
            runs = seconds[tool, epochs]
            ratio = "" if tool == "vaezoo" else f"**{median(runs) / ours:.2f}x**"
            lines.append(
                f"| {epochs} | {tool} | {median(runs):.1f} | {', '.join(f'{s:.1f}' for s in runs)} | {ratio} "
                f"| {median(elbos[tool, epochs]):.2f} |"
            )
    lines += [
        "",
        (
            f"Ceiling: the model's forward+backward alone in plain torch on a random batch of 128 runs at "
            f"{ceiling_rate:,.0f} images/s on this machine (no optimizer step, no data pipeline); vaezoo's training "
            f"steps ran at a median {train_rate:,.0f} images/s, {train_rate / ceiling_rate:.0%} of it."
        ),
    ]
    return lines


if __name__ == "__main__":
    main()
