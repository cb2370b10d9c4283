"""User-facing errors: each one is printed as a single line and exits with status 2."""

from __future__ import annotations

import errno


class VaezooError(Exception):
    """A problem with the user's input (spec, data, output folder), not a bug in vaezoo."""


class SpecError(VaezooError):
    """The spec (or an override of it) is invalid; the message names the YAML path."""


class DataError(VaezooError):
    """A data file is missing, truncated or fails its checksum."""


class ArgumentError(VaezooError, ValueError):
    """A Python API argument of the wrong type, dtype, shape or range (also a ValueError, as Python expects)."""


class RegistryError(VaezooError, ValueError):
    """A component, dataset or executor registered under a name already taken."""


class OutputError(VaezooError):
    """The output folder cannot be written, or a run there conflicts with the request."""


def first_line(error: BaseException) -> str:
    """An exception's message cut to one line (of at most 200 characters), or its type's name if it has none."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


#: what the machine refuses (a full disk or quota, a read-only or forbidden folder, a path too long or gone),
#: as opposed to an OSError that is a bug in vaezoo
ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENAMETOOLONG,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
    }
)


def environment_error(error: OSError) -> OutputError | None:
    """The one-line user error for an OSError the machine caused, naming its file; None for any other."""
    if error.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{error.filename}: " if error.filename else ""
    return OutputError(f"{where}{error.strerror or error}")
