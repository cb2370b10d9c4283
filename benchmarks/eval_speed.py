"""Importance-weighted test NLL: vaezoo's batched, chunked estimate against one image at a time,
and against its floor: the decoder's matmul FLOPs over images x K at the machine's matmul rate.

The reference loop is the straightforward one: for each test image, draw its K samples, decode
them, and take the logsumexp. Both use the same model and the same formula; the benchmark checks
that they agree (within the Monte Carlo noise of their different draws) and reports the ratio.
`--budgets` also times the estimate at other CPU chunk budgets, interleaved, to justify the default.

    VAEZOO_DATA=../shared/data python -m benchmarks.eval_speed --run runs/mnist-mlp --images 200
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import header, median, write
from vaezoo.evaluate import chunking, latents
from vaezoo.evaluate.evaluation import importance_weighted_nll, log_likelihood_iw
from vaezoo.model.distributions import DiagonalGaussian, gaussian_log_density, log_mixture
from vaezoo.runs.saved_runs import load_run


@torch.inference_mode()
def one_at_a_time(model: torch.nn.Module, images: torch.Tensor, samples: int) -> float:
    """-log p(x) by K samples, image by image (the reference)."""
    model.eval()
    generator = torch.Generator(images.device).manual_seed(1)
    total = 0.0
    for x in images:
        weights = model.log_weights(x.unsqueeze(0), samples, generator)
        total -= (torch.logsumexp(weights.double(), dim=0) - math.log(samples)).item()
    return total / len(images)


@torch.inference_mode()
def decoder_flops(model: torch.nn.Module, device: torch.device) -> int:
    """FLOPs of one decoder pass for one latent sample (matmuls and convolutions, as torch counts them)."""
    with FlopCounterMode(display=False) as counter:
        model.decode(torch.zeros(1, model.latent_dim, device=device))
    return counter.get_total_flops()


@torch.inference_mode()
def matmul_rate(device: torch.device, size: int = 2048, seconds: float = 2.0) -> float:
    """The machine's float32 matmul rate in FLOP/s: the median of repeated size^3 products."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    times: list[float] = []
    while sum(times) < seconds:
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / median(times)


def time_budgets(model, images, samples, batch_size, budgets: list[int], repeats: int) -> list[str]:
    """The estimate's seconds at each CPU chunk budget, interleaved `repeats` times, as medians."""
    seconds: dict[int, list[float]] = {b: [] for b in budgets}
    for _ in range(repeats):
        for budget in budgets:
            chunking.CPU_ELEMENT_BUDGET = budget
            start = time.perf_counter()
            importance_weighted_nll(model, images, samples, batch_size)
            seconds[budget].append(time.perf_counter() - start)
    lines = ["", f"CPU chunk budget (decoder activation elements held at once), {repeats} interleaved repeats:", ""]
    lines += ["| budget | MiB of float32 | chunks (images x samples) | median seconds |", "|---|---|---|---|"]
    for budget in budgets:
        chunking.CPU_ELEMENT_BUDGET = budget
        chunks = chunking.is_chunks(model, samples, min(batch_size, len(images)), images)
        lines.append(
            f"| 2^{budget.bit_length() - 1} | {budget * 4 / 2**20:g} | {chunks.images} x {chunks.samples} | {median(seconds[budget]):.2f} |"
        )
    return lines


@torch.inference_mode()
def mi_elementwise(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, rows: int = 250) -> torch.Tensor:
    """log q(z) under the aggregate posterior, the straightforward way: an elementwise (rows, N, D) block."""
    parts = []
    for z_rows in z.split(rows):
        pairs = gaussian_log_density(z_rows[:, None, :].double(), mu[None].double(), logvar[None].double()).sum(-1)
        parts.append(torch.logsumexp(pairs, dim=1) - math.log(len(mu)))
    return torch.cat(parts)


def time_mutual_information(model: torch.nn.Module, test: torch.Tensor, batch_size: int) -> list[str]:
    """vaezoo's log q(z) by matrix products against the elementwise reference, on the run's test posteriors."""
    mu, logvar = latents.posterior_params(model, test, batch_size)
    z = DiagonalGaussian(mu, logvar).rsample(generator=torch.Generator(mu.device).manual_seed(0))
    start = time.perf_counter()
    reference = mi_elementwise(mu, logvar, z)
    reference_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = torch.cat([log_mixture(rows, mu, logvar) for rows in z.split(latents.MI_ROWS)])
    ours_seconds = time.perf_counter() - start
    error = ((ours - reference).abs() / reference.abs()).max().item()
    return [
        "",
        f"Mutual information's aggregate posterior log q(z) over all {len(mu):,} test posteriors (N^2 pairs):",
        "",
        "| log q(z) | seconds |",
        "|---|---|",
        f"| elementwise (rows, N, D) blocks, float64 (reference) | {reference_seconds:.2f} |",
        f"| vaezoo: one float64 matrix product per block of {latents.MI_ROWS} rows | {ours_seconds:.2f} |",
        "",
        f"**Ratio: {reference_seconds / ours_seconds:.1f}x**; largest relative difference {error:.1e}.",
    ]


def cpu_check(model: torch.nn.Module, images: torch.Tensor, samples: int, batch_size: int) -> list[str]:
    """The device's estimate against the CPU's on the same images and model, image by image.

    Both are unbiased estimates of the same L_K with independent draws, so the per-image differences
    average to 0 within their standard error.
    """
    device_nll = -torch.cat([log_likelihood_iw(model, b, samples) for b in images.split(batch_size)]).cpu()
    cpu_model = copy.deepcopy(model).cpu()
    cpu_nll = -torch.cat([log_likelihood_iw(cpu_model, b, samples) for b in images.cpu().split(batch_size)])
    diff = device_nll - cpu_nll
    stderr = diff.std().item() / math.sqrt(len(diff))
    return [
        "",
        f"Check against the CPU estimator, same model, first {len(images)} test images, K = {samples}, independent draws:",
        "",
        "| estimate on | test NLL (nats/image) |",
        "|---|---|",
        f"| {images.device.type} | {device_nll.mean():.3f} |",
        f"| cpu | {cpu_nll.mean():.3f} |",
        "",
        (
            f"Mean per-image difference {diff.mean():+.4f} ± {stderr:.4f} nats (standard error of the paired "
            f"differences): {'within' if abs(diff.mean().item()) <= 2 * stderr else 'OUTSIDE'} two standard errors."
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run folder (spec.yaml + checkpoint.pt)")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--images", type=int, default=10000, help="test images to score (all 10,000 by default)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cpu-check", type=int, default=0, metavar="N", help="also compare with the CPU on N images")
    parser.add_argument("--budgets", default="", help="CPU chunk budgets to compare, as powers of two: 20,22,24")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of each timing (medians)")
    args = parser.parse_args()

    loaded = load_run(Path(args.run), args.device)
    spec, model, data = loaded.spec, loaded.model, loaded.data
    device = data.test_images.device
    images = data.test_images[: args.images]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    importance_weighted_nll(model, images[:10], 10, spec.eval.batch_size)  # library loading and warm-up, untimed
    ours_times, reference_times = [], []
    for _ in range(args.repeats):  # alternating, so both see the same machine state
        sync()
        start = time.perf_counter()
        ours = importance_weighted_nll(model, images, args.samples, spec.eval.batch_size)
        sync()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = one_at_a_time(model, images, args.samples)
        reference_times.append(time.perf_counter() - start)
    ours_seconds, reference_seconds = median(ours_times), median(reference_times)
    flops = decoder_flops(model, device) * len(images) * args.samples
    rate = matmul_rate(device)
    floor_seconds = flops / rate

    lines = header(f"Importance-weighted test NLL, K = {args.samples}: batched vs one image at a time", device)
    lines += [
        f"Model: `{args.run}` ({spec.name}); {len(images):,} test images (fixed binarization).",
        "",
        f"Median seconds of {args.repeats} alternating runs each.",
        "",
        "| estimator | seconds | test NLL (nats/image) |",
        "|---|---|---|",
        f"| one image at a time (reference) | {reference_seconds:.1f} | {reference:.2f} |",
        f"| vaezoo: batched over images, chunked over K, running logsumexp | {ours_seconds:.1f} | {ours.nll:.2f} ± {ours.stderr:.2f} |",
        "",
        (
            f"**Ratio: {reference_seconds / ours_seconds:.1f}x** faster; the two estimates differ by "
            f"{ours.nll - reference:+.3f} nats (different draws of the same estimator)."
        ),
        "",
        (
            f"Floor: the decoder's {flops / 1e9:,.0f} GFLOP (images x K x {decoder_flops(model, device) / 1e6:.3f} MFLOP "
            f"per sample) at the measured float32 matmul rate of {rate / 1e9:,.0f} GFLOP/s (2048^3 products) is "
            f"{floor_seconds:.2f} s: **vaezoo runs at {floor_seconds / ours_seconds:.0%} of its floor**."
        ),
    ]
    lines += time_mutual_information(model, data.test_images, spec.eval.batch_size)
    if args.budgets:
        budgets = [1 << int(p) for p in args.budgets.split(",")]
        lines += time_budgets(model, images, args.samples, spec.eval.batch_size, budgets, args.repeats)
    if args.cpu_check and device.type != "cpu":
        lines += cpu_check(model, images[: args.cpu_check], args.samples, spec.eval.batch_size)
    write(f"eval_speed_{device.type}.md", lines)


if __name__ == "__main__":
    main()
