"""`vaezoo sample | interpolate | traverse RUN`: PNGs drawn from a finished run's model, any count, any seed."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaezoo.core.errors import VaezooError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register the three drawing commands on the CLI's subcommand parser."""
    sample = commands.add_parser("sample", help="decode draws from a run's prior into a PNG grid")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, default=64, help="how many samples (default: 64)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--label", type=int, help="a conditional run's class to draw (default: the classes in turn)")
    _common(sample, "samples.png")
    sample.set_defaults(handler=_cmd_sample)

    interpolate = commands.add_parser("interpolate", help="decode the line between two test images' posterior means")
    interpolate.add_argument("run_dir")
    interpolate.add_argument("--a", type=int, default=0, help="index of the first test image (default: 0)")
    interpolate.add_argument("--b", type=int, default=1, help="index of the second test image (default: 1)")
    interpolate.add_argument("--steps", type=int, default=10)
    interpolate.add_argument(
        "--label", type=int, help="a conditional run's class to decode the path with (required there)"
    )
    _common(interpolate, "interpolation.png")
    interpolate.set_defaults(handler=_cmd_interpolate)

    traverse = commands.add_parser("traverse", help="vary the latent dims with the most KL around one test image")
    traverse.add_argument("run_dir")
    traverse.add_argument("--image", type=int, default=0, help="index of the test image (default: 0)")
    traverse.add_argument("--dims", type=int, default=8, help="how many dims, most KL first (default: 8)")
    _common(traverse, "traversal.png")
    traverse.set_defaults(handler=_cmd_traverse)


def _common(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("--out", help=f"PNG to write (default: RUN_DIR/{default_name})")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the spec's")
    parser.set_defaults(default_name=default_name)


#: The most images one command draws: a 100 x 100 grid is already a 2,800-pixel-square PNG.
MOST_IMAGES = 10_000
MOST_STEPS = 1_000


def _count(value: int, name: str, most: int) -> int:
    """`value` when it is 1 .. most; a one-line error before anything is loaded otherwise."""
    if not 1 <= value <= most:
        raise VaezooError(f"{name} must be from 1 to {most:,}, not {value}")
    return value


def _cmd_sample(args: argparse.Namespace) -> None:
    n = _count(args.n, "-n", MOST_IMAGES)
    run = _load(args)
    _save(run.sample(n, seed=args.seed, label=args.label), args, per_row=8)


def _cmd_interpolate(args: argparse.Namespace) -> None:
    steps = _count(args.steps, "--steps", MOST_STEPS)
    run = _load(args)
    images = run.data.test_images
    a, b = (_image_index(i, len(images)) for i in (args.a, args.b))
    _save(run.interpolate(images[a], images[b], steps, label=args.label), args, per_row=steps)


def _cmd_traverse(args: argparse.Namespace) -> None:
    from vaezoo.outputs.figures import real_code
    from vaezoo.outputs.grids import TRAVERSAL_VALUES, traversal_grid

    dims = _count(args.dims, "--dims", MOST_STEPS)
    run = _load(args)
    if run.model.conditional:  # its decoder reads a label, and a traversal has none to give it
        raise VaezooError("traverse: this run's model is conditional; draw its classes with vaezoo sample instead")
    if not real_code(run.model):
        raise VaezooError(
            f"traverse: this run's code is {run.model.posterior.space}, not real vectors; it has no values to sweep"
        )
    images = run.data.test_images
    image = images[_image_index(args.image, len(images))]
    grid = traversal_grid(run.model, image, run.metrics.kl_per_dim, dims=dims)
    _save(grid, args, per_row=len(TRAVERSAL_VALUES), is_grid=True)


def _image_index(index: int, count: int) -> int:
    if not 0 <= index < count:
        raise VaezooError(f"test image index {index} is out of range 0..{count - 1}")
    return index


def _load(args: argparse.Namespace):
    from vaezoo.api import load

    path = Path(args.run_dir)
    if not path.is_dir():
        raise VaezooError(f"run folder not found: {path}")
    return load(path, args.device)


def _save(images, args: argparse.Namespace, per_row: int, is_grid: bool = False) -> None:
    from vaezoo.core import io
    from vaezoo.outputs.grids import save_grid_png, tile

    out = Path(args.out) if args.out else Path(args.run_dir) / args.default_name
    grid = images if is_grid else tile(images.float().cpu(), per_row)
    io.atomic_write(out, lambda handle: save_grid_png(grid, handle))
    print(f"wrote {out}")
