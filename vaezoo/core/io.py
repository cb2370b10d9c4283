"""Reading and writing run files. Writes are atomic: a killed process never leaves a half-written file
under a final name, and a write the machine refuses (a full disk, a read-only folder) leaves no temporary
behind and is one OutputError naming the file. Reads turn any damage (bad JSON, a missing key, a record
of the wrong shape) into one OutputError naming the file.

A run folder may come from someone else, so no write goes through a link or into a special file (a
FIFO, a device), and every read is of a regular file, bounded, opened without blocking: a FIFO in
place of a run file is refused at once instead of hanging the reader."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import torch
from pydantic import TypeAdapter, ValidationError

from vaezoo.core.errors import OutputError, VaezooError, first_line

T = TypeVar("T")

# mkstemp creates files readable by their owner only; results are meant to be shared like any file.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
#: the largest run file read whole (metrics.json, history.jsonl, sweep.json, a checkpoint)
MAX_READ_BYTES = 4 * 2**30


def check_target(path: Path) -> None:
    """Refuse to write `path` where it is a link or a special file (a FIFO, a device, a folder), or where
    its folder is a link: a write there would land outside the run or replace something not a file."""
    for target, what in ((path, "file"), (path.parent, "folder")):
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
        if stat.S_ISLNK(mode) and (what == "file" or target.name in LINK_FREE_FOLDERS):
            raise OutputError(f"refusing to write {path}: {target} is a symbolic link")
        if what == "file" and not stat.S_ISREG(mode):
            raise OutputError(f"refusing to write {path}: it exists and is not a regular file")


#: folders inside a run or sweep folder that vaezoo makes itself, so a link there was put by someone else
LINK_FREE_FOLDERS = frozenset({"figures", "strips"})


def ensure_folder(path: Path) -> Path:
    """Make the folder `path` (and its parents); OutputError where it is a link or not a folder."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"refusing to write into {path}: it is a symbolic link or not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    return path


@contextlib.contextmanager
def open_regular(path: Path, follow_links: bool = True) -> Iterator[BinaryIO]:
    """`path` opened for reading, refused (OutputError) unless it is a regular file; opened without
    blocking, so a FIFO or a device is refused at once instead of hanging the reader."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise OutputError(f"cannot read {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"cannot read {path}: it is not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def read_bytes(path: Path, limit: int = MAX_READ_BYTES, follow_links: bool = True) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (OutputError beyond)."""
    with open_regular(path, follow_links) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as error:
            raise OutputError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > limit:
        raise OutputError(f"cannot read {path}: it is larger than {limit} bytes")
    return data


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
    check_target(path)
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
        return json.loads(read_bytes(path).decode("utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line of `path`; OutputError naming it (and the line) when damaged."""
    with reading(path):
        lines = read_bytes(path).decode("utf-8").splitlines()
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
        with open_regular(path) as handle:  # /dev/zero or a FIFO would never end
            return torch.load(handle, map_location=device, weights_only=True)
    except VaezooError:
        raise
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
