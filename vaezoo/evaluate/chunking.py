"""How the importance-sampling estimate splits its work: batches of images and chunks of samples,
sized from the decoder's measured activation footprint and the device's budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vaezoo.model.vae import VAE

# Decoder activations the IS estimate holds at once, in elements. On the CPU a block that stays in the
# shared cache runs fastest (benchmarks/eval_speed.py --budgets: 2^21 to 2^23 within noise of each other,
# 2^24 a quarter slower); a GPU wants large launches: 2^27
# elements (512 MiB of float32) gave benchmarks/results/eval_speed_cuda.md, less when memory is short.
CPU_ELEMENT_BUDGET = 1 << 22
GPU_ELEMENT_BUDGET = 1 << 27
GPU_MEMORY_SHARE = 0.25


def element_budget(device: torch.device) -> int:
    """How many decoder activation elements (float32) one IS step may hold on `device`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(CPU_ELEMENT_BUDGET, min(GPU_ELEMENT_BUDGET, int(free * GPU_MEMORY_SHARE) // 4))
    return CPU_ELEMENT_BUDGET


@torch.inference_mode()
def decoder_footprint(model: VAE, like: torch.Tensor) -> int:
    """Elements the decoder's layers produce for one latent sample, every leaf module's output summed,
    on the device and in the dtype of `like`."""
    leaves = [m for m in model.decoder.modules() if not any(m.children())]
    total = 0

    def count(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    handles = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        model.decode(like.new_zeros(1, model.latent_dim))
    finally:
        for handle in handles:
            handle.remove()
    return max(total, 1)


@dataclass(frozen=True)
class Chunks:
    """How the IS estimate splits its work: images per batch, importance samples per decoder call."""

    images: int
    samples: int


def is_chunks(model: VAE, samples: int, batch_size: int, images: torch.Tensor) -> Chunks:
    """Batches and sample chunks sized from the decoder's footprint and the budget of the device
    that holds `images`.

    Images come first (a wide matmul is the efficient one); samples fill what the budget leaves.
    """
    per_sample, budget = decoder_footprint(model, images), element_budget(images.device)
    per_batch = max(1, min(batch_size, budget // per_sample))
    return Chunks(images=per_batch, samples=samples_per_chunk(samples, per_batch, per_sample, budget))


def samples_per_chunk(samples: int, images: int, per_sample: int, budget: int) -> int:
    """Importance samples per decoder call for a batch of `images`, within the element budget."""
    return max(1, min(samples, budget // (images * per_sample)))
