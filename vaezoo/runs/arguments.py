"""The Python API's argument checks for a loaded run: counts, images and labels, each wrong one an
ArgumentError naming the argument (a notebook user's typo is one line, never a traceback from torch)."""

from __future__ import annotations

from typing import Any

import torch

from vaezoo.core.errors import ArgumentError

#: the most images encode, reconstruct and sample take at once, and the most interpolation steps
MAX_IMAGES = 65536
MAX_STEPS = 1000


def count_argument(value: Any, name: str, least: int, most: int) -> int:
    """`value` as an int in [least, most] (a numpy integer too; not a bool or float), else an ArgumentError."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ArgumentError(f"{name} must be a whole number, not a {type(value).__name__}")
    number = value.__index__()
    if not least <= number <= most:
        raise ArgumentError(f"{name} = {number} is out of range; give {least} to {most}")
    return number


def tensor_argument(x: Any, name: str) -> torch.Tensor:
    """A tensor or numpy array as float images: floats as they are, uint8 as 0..255, bool as 0/1."""
    if type(x).__module__ == "numpy" and hasattr(x, "__array__"):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ArgumentError(f"{name}: cannot read this numpy array as images ({error})") from None
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"{name} must be a torch.Tensor or numpy array of images, not a {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.float() / 255
    if x.dtype == torch.bool or x.is_floating_point():
        return x.float()
    raise ArgumentError(f"{name} has dtype {x.dtype}; give floats in [0, 1], uint8 in 0..255 or bool")


def shape_text(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")"


def label_argument(labels: Any, n: int, classes: int, name: str = "labels") -> torch.Tensor | None:
    """`labels` for n images of a model with `classes` classes (0: unconditional), as a LongTensor (n,):
    a conditional model needs one label per image (an int is every image's), an unconditional one none."""
    if classes == 0:
        if labels is not None:
            raise ArgumentError(f"{name}: this run's model is not conditional (model.classes is 0)")
        return None
    if labels is None:
        raise ArgumentError(
            f"{name}: this run's model is conditional (model.classes = {classes}): give each image's label"
        )
    if getattr(labels, "ndim", None) == 0 or not hasattr(labels, "__len__"):  # one label for every image
        return torch.full((n,), count_argument(labels, name, 0, classes - 1))
    try:
        values = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise ArgumentError(f"{name} must be whole-number labels, one per image") from None
    if values.dim() != 1 or len(values) != n or values.is_floating_point() or values.dtype == torch.bool:
        raise ArgumentError(f"{name} must be {n} whole-number labels, one per image, not {tuple(values.shape)}")
    if bool((values < 0).any() | (values >= classes).any()):
        raise ArgumentError(f"{name} must be from 0 to {classes - 1}")
    return values.long()
