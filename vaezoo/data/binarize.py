"""Binarization: how grey levels become the data the likelihood sees.

The Binarization classes and their BINARIZATIONS registry (none, dynamic, static),
bernoulli_draw, and the fixed EVAL_SEEDS of the evaluation sets.
"""

from __future__ import annotations

import torch

from vaezoo.core.registry import Registry

# Evaluation images are binarized once with these fixed seeds (whatever the run's seed), so every
# evaluation of every run sees the same binary validation and test sets.
EVAL_SEEDS = {"static-train": 1, "val": 2, "test": 3, "probe": 4}


class Binarization:
    """How grey levels become the data the likelihood sees, for training batches and evaluation sets."""

    def prepare_train(self, images: torch.Tensor) -> torch.Tensor:
        """The uint8 training images to hold on the device."""
        return images

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A float batch in [0, 1] from held uint8 images."""
        return images.float().div_(255)

    def eval_set(self, images: torch.Tensor, split: str) -> torch.Tensor:
        """A whole evaluation split as floats, the same on every call."""
        return images.float().div_(255)


BINARIZATIONS: Registry[type[Binarization]] = Registry("binarization")


def bernoulli_draw(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Bernoulli(v / 255) draw per uint8 pixel v, as floats 0/1.

    P(U < v) = v / 255 exactly for U uniform on {0, ..., 254}; comparing random bytes is about three
    times faster than torch.bernoulli on floats, and this runs for every training batch.
    """
    noise = torch.randint(0, 255, images.shape, dtype=torch.uint8, generator=generator, device=images.device)
    return (noise < images).float()


def _fixed_draw(images: torch.Tensor, seed: int) -> torch.Tensor:
    """One draw with a fixed seed, on the CPU so that every device gets the same binary images."""
    return bernoulli_draw(images.cpu(), torch.Generator().manual_seed(seed)).to(images.device)


@BINARIZATIONS.register("none")
class NoBinarization(Binarization):
    """Grey levels in [0, 1] (the classic BCE setup; Bernoulli numbers are then not likelihoods)."""


@BINARIZATIONS.register("dynamic")
class DynamicBinarization(Binarization):
    """A fresh Bernoulli draw of the grey levels each time a training image is used."""

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return bernoulli_draw(images, generator)

    def eval_set(self, images: torch.Tensor, split: str) -> torch.Tensor:
        return _fixed_draw(images, EVAL_SEEDS[split])


@BINARIZATIONS.register("static")
class StaticBinarization(DynamicBinarization):
    """One draw per training image, made once with a fixed seed."""

    def prepare_train(self, images: torch.Tensor) -> torch.Tensor:
        return (_fixed_draw(images, EVAL_SEEDS["static-train"]) * 255).to(torch.uint8)

    def train_batch(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images.float().div_(255)
