"""`python -m tests.synthetic_cli ROOT ARGS...`: the vaezoo CLI with the synthetic dataset registered,
for tests that must run vaezoo in its own process (to kill it, or to read its exit status)."""

import sys
from pathlib import Path

from tests import synthetic
from vaezoo.cli import main

synthetic.register(Path(sys.argv[1]))
sys.exit(main(sys.argv[2:]))
