"""Your own parts in every process: `VAEZOO_PLUGINS` names modules (comma-separated, importable on
each machine) that register components, datasets or executors. vaezoo imports them when its command
line starts and in every process that runs a sweep point (local workers and Ray tasks), so a part
that is one file of yours works in a sweep as it does in a single run."""

from __future__ import annotations

import importlib
import os

from vaezoo.core.errors import VaezooError, first_line

ENV = "VAEZOO_PLUGINS"


def load_plugins() -> list[str]:
    """Import the modules named by $VAEZOO_PLUGINS (once each); returns their names."""
    names = [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise VaezooError(f"{ENV}: cannot import {name} ({error})") from None
        except VaezooError as error:  # a kind registered twice: the plugin must not replace vaezoo's own
            raise VaezooError(f"{ENV}: plugin {name}: {first_line(error)}") from None
    return names
