"""Start-up: how long `vaezoo --help`, `vaezoo list` and a spec error take, launch to exit, against
Python and `import torch` alone (the floor every command pays), and against an older checkout.

`--before REV` checks REV out into a temporary git worktree and times the same commands there, in
the same run, alternating with the current tree.

    python -m benchmarks.startup --before 3c3dc8f
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import header, median, write

ROOT = Path(__file__).resolve().parent.parent
BAD_SPEC = "name: typo\nmodel: {latent_dimm: 3}\n"  # a misspelt key: one line, exit 2


def commands(bad_spec: Path) -> dict[str, tuple[list[str], int]]:
    """Each timed command with the exit status it must give."""
    py = sys.executable
    return {
        "python -c pass": ([py, "-c", "pass"], 0),
        "python -c 'import torch'": ([py, "-c", "import torch"], 0),
        "vaezoo --help": ([py, "-m", "vaezoo", "--help"], 0),
        "vaezoo list": ([py, "-m", "vaezoo", "list"], 0),
        "vaezoo run (spec error)": ([py, "-m", "vaezoo", "run", str(bad_spec)], 2),
    }


def timed(argv: list[str], cwd: Path, status: int) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, check=False, cwd=cwd, capture_output=True)
    seconds = time.perf_counter() - start
    if result.returncode != status:
        raise SystemExit(f"{argv} in {cwd} exited {result.returncode}, not {status}: {result.stderr[-2000:]!r}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision to compare with (checked out into a temporary worktree)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bad_spec = Path(tmp) / "typo.yaml"
        bad_spec.write_text(BAD_SPEC)
        trees = {"now": ROOT}
        if args.before:
            trees[args.before] = Path(tmp) / "before"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(trees[args.before]), args.before], cwd=ROOT, check=True
            )
        try:
            seconds = measure(trees, commands(bad_spec), args.repeats)
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(trees[args.before])], cwd=ROOT, check=True)
    lines = header("Start-up: launch to exit of short commands", torch.device("cpu"))
    lines += [
        (
            f"Median of {args.repeats} runs each, the trees alternating; each command a fresh process "
            "(`python -m vaezoo` from the tree's root, so that tree's package is the one imported)."
        ),
        "",
        "| command | " + " | ".join(f"{name} (s)" for name in trees) + " |",
        "|---|" + "---|" * len(trees),
    ]
    for command in commands(Path("x")):
        lines.append(f"| {command} | " + " | ".join(f"{median(seconds[name, command]):.2f}" for name in trees) + " |")
    write("startup_cpu.md", lines)


def measure(trees: dict[str, Path], todo: dict[str, tuple[list[str], int]], repeats: int) -> dict:
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for name, tree in trees.items():
            for command, (argv, status) in todo.items():
                seconds.setdefault((name, command), []).append(timed(argv, tree, status))
    return seconds


if __name__ == "__main__":
    main()
