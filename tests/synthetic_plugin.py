"""A VAEZOO_PLUGINS module for tests whose points run in other processes (Ray tasks, spawned
workers): it registers the synthetic dataset from $VAEZOO_SYNTHETIC_ROOT there too."""

import os
from pathlib import Path

from tests import synthetic

synthetic.register(Path(os.environ["VAEZOO_SYNTHETIC_ROOT"]))
