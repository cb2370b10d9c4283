"""Reading and writing run files. Writes are atomic: a killed process never leaves a half-written file
under a final name, and a write the machine refuses (a full disk, a read-only folder) leaves no temporary
behind and is one OutputError naming the file. Reads turn any damage (bad JSON, a missing key, a record
of the wrong shape) into one OutputError naming the file."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import torch
from pydantic import TypeAdapter, ValidationError

from vaezoo.errors import OutputError, VaezooError, first_line

T = TypeVar("T")

# mkstemp creates files readable by their owner only; results are meant to be shared like any file.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


class _Recorded:
    """A file that remembers its first write error: some writers (torch.save) re-raise it as a RuntimeError
    that no longer says the disk was full."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temporary file beside `path`, flush it to disk, then rename it to `path`.

    An OSError on the way (no space, a read-only folder, a name too long) removes the temporary file and
    becomes an OutputError naming `path`.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    recorded = _Recorded(os.fdopen(fd, "wb"))
    try:
        with recorded.handle:
            write(cast(BinaryIO, recorded))
            recorded.handle.flush()
            os.fsync(recorded.handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        cause = error if isinstance(error, OSError) else recorded.error
        if cause is not None:
            raise OutputError(f"cannot write {path}: {cause.strerror or cause}") from None
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Inside, any problem with `path` or with what it holds (an OSError, a parse error, a missing key,
    a value of the wrong type or shape) becomes one OutputError naming the file."""
    try:
        yield
    except VaezooError:
        raise
    except OSError as error:
        raise OutputError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError) as error:
        raise OutputError(f"{path} is damaged or from another version: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    return f"it lacks {first_line(error)}" if isinstance(error, KeyError) else first_line(error)


def read_json(path: Path) -> Any:
    """The JSON document in `path`; OutputError naming it when it cannot be read or parsed."""
    with reading(path):
        return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line of `path`; OutputError naming it (and the line) when damaged."""
    with reading(path):
        lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as error:
                raise OutputError(f"{path} is damaged: line {number}: {error}") from None
            if not isinstance(row, dict):
                raise OutputError(f"{path} is damaged: line {number} is not a JSON object")
            rows.append(row)
    return rows


@functools.cache
def _adapter(kind: type[T]) -> TypeAdapter[T]:
    return TypeAdapter(kind)


def record(kind: type[T], data: Any, source: str) -> T:
    """`data` (parsed JSON, a checkpoint's entry) as a typed `kind` (a dataclass), checked field by field;
    OutputError naming `source` and the first field that does not fit."""
    try:
        return _adapter(kind).validate_python(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "its top level"
        message = "missing" if first["type"] == "missing" else first["msg"]
        raise OutputError(f"{source} is damaged or from another version: {where}: {message}") from None


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def load_torch(path: Path, device: torch.device) -> Any:
    """torch.load with weights_only=True: tensors and plain data only, never code.

    A file that would need anything else (a pickle crafted to run code, a corrupt file) is refused
    with an OutputError naming it.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except OSError as error:
        raise OutputError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 (torch raises several types for a bad file)
        reason = first_line(error)
        raise OutputError(f"checkpoint {path} refused: it cannot be loaded as weights only ({reason})") from None


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed process left behind (atomic_write's `.NAME.*.tmp`), in the
    folder and below it (figures/). Only the folder's lock holder may call this: a live writer's
    temporary looks the same."""
    for stale in folder.rglob(".*.tmp"):
        stale.unlink(missing_ok=True)
