"""`python -m tests.synthetic_cli ROOT [--no-figures] ARGS...`: the vaezoo CLI with the synthetic dataset
registered, for tests that must run vaezoo in its own process (to kill it, or to read its exit status).
With --no-figures, runs and sweeps draw no figures (runner's figures=False), for tests that check none."""

import sys
from pathlib import Path

from tests import synthetic
from tests.conftest import skip_figures
from vaezoo.cli.main import main

if __name__ == "__main__":  # not in the processes a local sweep spawns, which re-import this module
    synthetic.register(Path(sys.argv[1]))
    args = sys.argv[2:]
    if args[:1] == ["--no-figures"]:
        skip_figures()
        args = args[1:]
    sys.exit(main(args))
