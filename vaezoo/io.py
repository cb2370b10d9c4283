"""Atomic file writes: a killed process never leaves a half-written file under a final name."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

# mkstemp creates files readable by their owner only; results are meant to be shared like any file.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temporary file beside `path`, flush it to disk, then rename it to `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def load_torch(path: Path, device: torch.device) -> Any:
    """torch.load with weights_only=True: tensors and plain data only, never code.

    A file that would need anything else (a pickle crafted to run code, a corrupt file) is refused
    with an OutputError naming it.
    """
    from vaezoo.errors import OutputError

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises several types for a bad file)
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise OutputError(f"checkpoint {path} refused: it cannot be loaded as weights only ({reason})") from None


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed process left behind (atomic_write's `.NAME.*.tmp`)."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
