"""IDX files, the raw MNIST format, and file hashes.

Reading and atomically writing uint8 IDX files, and MD5 (or any hashlib algorithm) of a file
read in chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from vaezoo.core.errors import DataError

_IDX_UINT8 = 0x08
_CHUNK = 1 << 20


def md5_file(path: Path) -> str:
    """Hex MD5 of a file, read in chunks so large files need no memory."""
    return _hash_file(path, "md5")


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, atomically (temp file in the same folder, then replace)."""
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx needs a uint8 array of 1-255 dims, got {array.dtype} {array.shape}")
    header = bytes([0, 0, _IDX_UINT8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    path = Path(path)
    # A unique name opened with "x" (not mkstemp, whose 0600 mode would stick) honours the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(header)
            f.write(np.ascontiguousarray(array).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_idx(path: Path) -> np.ndarray:
    """Read a uint8 IDX file; DataError naming the file if its header or size is wrong."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0" or magic[3] == 0:
            raise DataError(f"{path} is not an IDX file (bad magic {magic.hex() or 'empty'})")
        if magic[2] != _IDX_UINT8:
            raise DataError(f"{path} is an IDX file of type 0x{magic[2]:02x}, expected uint8 (0x08)")
        dims_raw = f.read(4 * magic[3])
    if len(dims_raw) < 4 * magic[3]:
        raise DataError(f"{path} is truncated inside its IDX header")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    offset = 4 + len(dims_raw)
    expected = offset + int(np.prod(shape, dtype=np.int64))
    if size != expected:
        kind = "truncated" if size < expected else "padded"
        raise DataError(f"{path} is {kind}: {size} bytes, its IDX header {shape} says {expected}")
    # np.fromfile gives a writable array, so torch.from_numpy will not warn.
    return np.fromfile(path, dtype=np.uint8, offset=offset).reshape(shape)
