"""`vaezoo run | list | data`: the command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.table import Table

from vaezoo.core.errors import VaezooError, environment_error
from vaezoo.core.plugins import load_plugins

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like every other user error (argparse would print the whole usage first)."""
        raise VaezooError(f"{message} (see `{self.prog} --help`)")


def _cmd_run(args: argparse.Namespace) -> None:
    from vaezoo.spec.experiment import load_spec
    from vaezoo.spec.shipped import spec_path
    from vaezoo.sweeps.grid import is_sweep_file

    path = spec_path(args.spec)
    if is_sweep_file(path):  # `vaezoo run assignment`: a sweep's spec runs as its sweep, as one command
        _run_sweep(path, args.set, Path(args.out), quiet=args.quiet)
        return
    spec = load_spec(path, args.set)  # before the runner's imports: a bad spec fails fast
    from vaezoo.evaluate.console import make_console, print_metrics
    from vaezoo.runs.runner import run

    console = None if args.quiet else make_console(stderr=True)
    metrics = run(spec, Path(args.out), resume=args.resume, console=console)
    print_metrics(make_console(), spec.name, metrics, Path(args.out) / spec.name)


def _cmd_sweep(args: argparse.Namespace) -> None:
    from vaezoo.spec.shipped import spec_path
    from vaezoo.sweeps.executors import ExecutorOptions

    options = ExecutorOptions(jobs=args.jobs, address=args.address, shared=args.shared)
    _run_sweep(spec_path(args.sweep), args.set, Path(args.out), executor=args.executor, options=options)


def _run_sweep(
    path: Path, overrides: list[str], out: Path, executor: str = "local", options: Any = None, quiet: bool = False
) -> None:  # options: an ExecutorOptions, imported late so that --help stays fast
    """Run the sweep in `path` (its finished points are kept) and print its results table."""
    from vaezoo.evaluate.console import make_console
    from vaezoo.outputs.sweep_report import load_results_table
    from vaezoo.sweeps.executors import run_sweep
    from vaezoo.sweeps.grid import load_sweep

    sweep, points = load_sweep(path, overrides)
    console = None if quiet else make_console(stderr=True)
    run_sweep(sweep, points, out, console=console, executor=executor, options=options)
    make_console().print(load_results_table(out / sweep.name))  # a pipe gets whole lines


def _cmd_eval(args: argparse.Namespace) -> None:
    from vaezoo.runs.saved_runs import reevaluate
    from vaezoo.spec.experiment import EvalSpec, check_option

    iw_samples = args.iw_samples
    if iw_samples is not None:  # bounded like the spec's own eval.iw_samples (0 would mean "the spec's K")
        iw_samples = check_option(EvalSpec, "iw_samples", iw_samples, "--iw-samples")
    metrics = reevaluate(_run_dir(args.run_dir), iw_samples, args.device)
    print(
        f"test NLL (IS, K = {metrics.iw_samples}) {metrics.test_nll_iw:.2f} ± {metrics.test_nll_iw_stderr:.2f} "
        f"nats/image in {metrics.iw_seconds:.1f} s; -ELBO {metrics.test_neg_elbo:.2f}; "
        f"active units {metrics.active_units}; probe accuracy {100 * metrics.probe_accuracy:.1f} %"
    )


def _cmd_figures(args: argparse.Namespace) -> None:
    from vaezoo.runs.saved_runs import refigure

    refigure(_run_dir(args.run_dir), args.device)
    print(f"figures and report written under {args.run_dir}")


def _cmd_report(args: argparse.Namespace) -> None:
    from vaezoo.runs.saved_runs import rereport
    from vaezoo.sweeps.executors import rereport_sweep

    folder = _run_dir(args.run_dir)
    print(f"wrote {(rereport_sweep if (folder / 'sweep.json').exists() else rereport)(folder)}")


def _run_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise VaezooError(f"run folder not found: {path}")
    return path


def _cmd_list(args: argparse.Namespace) -> None:
    from vaezoo.data import BINARIZATIONS, DATASETS
    from vaezoo.evaluate.console import make_console, plain
    from vaezoo.spec.experiment import SLOTS

    table = Table(title="vaezoo components (the `kind` in a spec; * marks the default)")
    for column in ("slot", "kind", "spec fields", "what it is"):
        table.add_column(column)
    for slot in SLOTS:
        for name, component in slot.registry.items():
            kind = f"{name} *" if name == slot.default else name
            table.add_row(*map(plain, (slot.path, kind, _spec_fields(component.Spec), _summary(component))))
    for name, info in DATASETS.items():
        table.add_row(*map(plain, ("data.dataset", name, f"{info.image_shape}, {info.classes} classes", "")))
    for name, binarization in BINARIZATIONS.items():
        table.add_row(*map(plain, ("data.binarize", name, "", _summary(binarization))))
    make_console().print(table)  # docstrings hold formulas such as E[log p(x|z)]: plain text, not markup


def _spec_fields(spec: Any) -> str:
    fields = []
    for name, field in spec.model_fields.items():
        if name != "kind":
            fields.append(f"{name} = {field.get_default(call_default_factory=True)!r}")
    return "\n".join(fields)


def _summary(obj: Any) -> str:
    """The whole docstring, its lines joined into paragraphs (the table wraps them)."""
    paragraphs = inspect.cleandoc(obj.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _cmd_data(args: argparse.Namespace) -> None:
    from vaezoo.data import DATASETS, acquire, default_root

    if args.dataset not in DATASETS:
        raise VaezooError(f"unknown dataset {args.dataset!r}; known: {', '.join(DATASETS.names())}")
    info = DATASETS.get(args.dataset)
    raw_dir = info.raw_dir(Path(args.root) if args.root else default_root())
    if args.action == "fetch":
        info.fetch(raw_dir, print)
    acquire.verify_files(raw_dir, info.md5, info.name)
    print(f"{info.name}: all {len(info.md5)} files present with the canonical MD5s in {raw_dir}")


def build_parser() -> argparse.ArgumentParser:
    from vaezoo import __version__
    from vaezoo.cli import draw as cli_draw

    parser = _Parser(prog="vaezoo", description="A configurable zoo of VAEs on MNIST.")
    parser.add_argument("--version", action="version", version=f"vaezoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="train and evaluate one spec")
    run.add_argument("spec", help="experiment YAML file, or the name of a shipped one (quickstart)")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. model.latent_dim=2"
    )
    run.add_argument("--out", default="runs", help="output folder (default: runs)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from its last checkpoint, or a finished one to more epochs (--set train.epochs=N)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=_cmd_run)

    sweep = commands.add_parser("sweep", help="run every point of a sweep file, then its comparison report")
    sweep.add_argument("sweep", help="sweep YAML file (base plus grid / variants / seeds), or a shipped one's name")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every point")
    sweep.add_argument("--out", default="runs", help="output folder (default: runs)")
    sweep.add_argument("--jobs", type=int, default=1, help="local: processes running points at once (default: 1)")
    sweep.add_argument(
        "--executor", default="local", help="where points run: local (default) or ray (one Ray task each)"
    )
    sweep.add_argument(
        "--address", help="ray: the cluster to join (HOST:PORT or auto); default: start a local Ray instance"
    )
    sweep.add_argument(
        "--shared", action="store_true", help="ray: --out is at the same path on every node; write it in place"
    )
    sweep.set_defaults(handler=_cmd_sweep)

    evaluate = commands.add_parser("eval", help="recompute a trained run's test metrics")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--iw-samples", type=int, help="K of the importance-weighted NLL (default: the spec's)")
    evaluate.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the spec's")
    evaluate.set_defaults(handler=_cmd_eval)

    figures = commands.add_parser("figures", help="redraw a finished run's figures (and its report)")
    figures.add_argument("run_dir")
    figures.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the spec's")
    figures.set_defaults(handler=_cmd_figures)

    report = commands.add_parser("report", help="rewrite a finished run's or sweep's report.md and report.html")
    report.add_argument("run_dir")
    report.set_defaults(handler=_cmd_report)

    listing = commands.add_parser("list", help="every registered component and its spec fields")
    listing.set_defaults(handler=_cmd_list)

    data = commands.add_parser("data", help="fetch or check a dataset's files")
    data.add_argument("action", choices=["fetch", "check"])
    data.add_argument("dataset", help="mnist or fashion-mnist")
    data.add_argument("--root", help="data folder (default: $VAEZOO_DATA, else the user cache)")
    data.set_defaults(handler=_cmd_data)
    cli_draw.add_commands(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that what a stop must undo (a sweep's workers) is undone."""


_SIGTERM_SEEN: list[bool] = []  # a library on the way (Ray) may re-raise the stop as a plain KeyboardInterrupt


def _terminate(signum: int, frame: object) -> NoReturn:
    _SIGTERM_SEEN.append(True)
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vaezoo` console script; returns the exit status."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return _main(argv)
    _SIGTERM_SEEN.clear()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        load_plugins()
        handler: Callable[[argparse.Namespace], None] = args.handler
        handler(args)
    except VaezooError as error:
        print(f"vaezoo: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:  # the machine refused (a full disk, a read-only folder) where no file writer caught it
        user_error = environment_error(error)
        if user_error is None:
            raise
        print(f"vaezoo: error: {user_error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated) or bool(_SIGTERM_SEEN)
        print("vaezoo: stopped by SIGTERM" if terminated else "vaezoo: interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
