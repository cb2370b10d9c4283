"""One writer per folder: an advisory lock (fcntl.flock on `<folder>/.lock`) held while a process
trains, evaluates or redraws a run, or drives a sweep. The kernel drops it when its holder exits,
however it exits, so a killed process never leaves a folder locked."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vaezoo.core import io
from vaezoo.core.errors import OutputError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run folder", create: bool = False) -> Iterator[None]:
    """Hold `folder`'s lock for the block; OutputError at once (never a wait) when another process holds
    it. With `create`, the folder is made first; otherwise a missing folder is an OutputError."""
    if not folder.is_dir() and not create:
        raise OutputError(f"no {what} {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # never through a link, never a FIFO or device: a received folder's .lock may point at a user's file,
        # which the pid written below would overwrite
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as error:
        raise OutputError(f"cannot write {what} {folder}: {error.strerror or error}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"cannot lock {what} {folder}: {folder / LOCK_NAME} is not a regular file")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"cannot lock {what} {folder}: {error.strerror or error}") from None
            holder = _holder(fd)
            raise OutputError(
                f"{what} {folder} is busy: another vaezoo process{holder} is writing it; "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    """` (pid N)` from what the holder wrote into the lock file, when it reads."""
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        return f" (pid {int(text)})" if text else ""
    return ""


#: what vaezoo writes into each folder it makes, so that a run, a sweep and anyone else's folder are never confused
MARKERS = {"run": ".vaezoo-run", "sweep": ".vaezoo-sweep"}
#: what may be in a folder vaezoo has not written yet: its lock, and the write probe a killed run may leave
_NOT_CONTENT = {LOCK_NAME, ".vaezoo-write-test"}


def folder_kind(folder: Path) -> str | None:
    """ "run" or "sweep" for a folder vaezoo made, "new" for a missing or empty one, None for anything else.

    A folder an older vaezoo made has no marker: spec.yaml with checkpoint.pt or metrics.json is a run,
    sweep.json a sweep."""
    if not folder.exists():
        return "new"
    if folder.is_symlink() or not folder.is_dir():
        return None
    names = {path.name for path in folder.iterdir()} - _NOT_CONTENT
    if not names:
        return "new"
    marked = [kind for kind, marker in MARKERS.items() if marker in names]
    if marked:
        regular = all(stat.S_ISREG(os.lstat(folder / MARKERS[kind]).st_mode) for kind in marked)
        return marked[0] if len(marked) == 1 and regular else None
    if "sweep.json" in names:
        return "sweep"
    return "run" if "spec.yaml" in names and names & {"checkpoint.pt", "metrics.json"} else None


def check_folder_kind(folder: Path, kind: str) -> None:
    """OutputError (one line) unless `folder` is new or a vaezoo folder of `kind`: nothing of vaezoo's is
    written into someone else's folder, and a run and a sweep of one name never overwrite each other."""
    found = folder_kind(folder)
    if found in ("new", kind):
        return
    if found is None:
        raise OutputError(
            f"{folder} exists and is not a vaezoo {kind} folder (no {MARKERS[kind]} marker); vaezoo will not "
            "write into it: choose another name or --out"
        )
    raise OutputError(f"{folder} is a vaezoo {found} folder, not a {kind}: give the {kind} another name or --out")


def mark_folder(folder: Path, kind: str) -> None:
    """Write `folder`'s marker (atomically, never through a link) unless it is there."""
    if not (folder / MARKERS[kind]).exists():
        io.write_text(folder / MARKERS[kind], f"{kind}\n")
