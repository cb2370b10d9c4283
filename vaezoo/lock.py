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

from vaezoo.errors import OutputError

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
