"""Tests of vaezoo.data.acquire: IDX files, checksums, the restricted unpickler, pkl -> IDX conversion.

No network: the download routes themselves are exercised by hand (see the module docstring).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from vaezoo.core.errors import DataError
from vaezoo.data import acquire
from vaezoo.data.acquire import MNIST_MD5, verify_files
from vaezoo.data.idx import md5_file, read_idx, write_idx
from vaezoo.data.mnisthub import pkl_to_idx, restricted_load

# --------------------------------------------------------------------------- IDX


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        dtype=np.uint8,
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
    )
)
def test_idx_round_trip(tmp_path_factory: pytest.TempPathFactory, array: np.ndarray) -> None:
    path = tmp_path_factory.mktemp("idx") / "a-idx-ubyte"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_header_layout(tmp_path: Path) -> None:
    path = tmp_path / "x"
    write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert path.read_bytes() == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # no temp file left behind


def test_write_idx_rejects_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.float32))


@pytest.fixture
def idx_file(tmp_path: Path) -> Path:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    return path


def _assert_data_error_names(path: Path, word: str) -> None:
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and word in message
    assert "\n" not in message


def test_read_idx_rejects_truncated(idx_file: Path) -> None:
    idx_file.write_bytes(idx_file.read_bytes()[:-1])
    _assert_data_error_names(idx_file, "truncated")


def test_read_idx_rejects_truncated_header(idx_file: Path) -> None:
    idx_file.write_bytes(idx_file.read_bytes()[:9])
    _assert_data_error_names(idx_file, "truncated")


def test_read_idx_rejects_padded(idx_file: Path) -> None:
    idx_file.write_bytes(idx_file.read_bytes() + b"\0")
    _assert_data_error_names(idx_file, "padded")


def test_read_idx_rejects_bad_magic(idx_file: Path) -> None:
    idx_file.write_bytes(b"\x1f\x8b" + idx_file.read_bytes()[2:])  # e.g. a still-gzipped file
    _assert_data_error_names(idx_file, "magic")


def test_read_idx_rejects_empty_file(idx_file: Path) -> None:
    idx_file.write_bytes(b"")
    _assert_data_error_names(idx_file, "magic")


def test_read_idx_rejects_non_uint8(idx_file: Path) -> None:
    data = bytearray(idx_file.read_bytes())
    data[2] = 0x0D  # float32
    idx_file.write_bytes(bytes(data))
    _assert_data_error_names(idx_file, "uint8")


# --------------------------------------------------------------------------- checksums


def test_md5_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert md5_file(path) == hashlib.md5(data).hexdigest()


@pytest.fixture
def tiny_raw(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    md5s = {}
    for name in ("a-idx1-ubyte", "b-idx1-ubyte"):
        data = name.encode() * 3
        (tmp_path / name).write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()
    return tmp_path, md5s


def test_verify_files_passes(tiny_raw: tuple[Path, dict[str, str]]) -> None:
    raw_dir, md5s = tiny_raw
    verify_files(raw_dir, md5s, "mnist")


def test_verify_files_missing(tiny_raw: tuple[Path, dict[str, str]]) -> None:
    raw_dir, md5s = tiny_raw
    (raw_dir / "b-idx1-ubyte").unlink()
    with pytest.raises(DataError) as info:
        verify_files(raw_dir, md5s, "mnist")
    message = str(info.value)
    assert str(raw_dir / "b-idx1-ubyte") in message
    assert "vaezoo data fetch mnist" in message and "VAEZOO_DATA" in message
    assert "\n" not in message


def test_verify_files_wrong_md5(tiny_raw: tuple[Path, dict[str, str]]) -> None:
    raw_dir, md5s = tiny_raw
    path = raw_dir / "a-idx1-ubyte"
    path.write_bytes(b"corrupted")
    with pytest.raises(DataError) as info:
        verify_files(raw_dir, md5s, "mnist")
    message = str(info.value)
    assert str(path) in message
    assert md5s["a-idx1-ubyte"] in message and hashlib.md5(b"corrupted").hexdigest() in message
    assert "delete" in message and "\n" not in message


# --------------------------------------------------------------------------- restricted pickle


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_restricted_load_numpy_arrays(protocol: int) -> None:
    x = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    y = np.arange(4, dtype=np.int64)
    blob = pickle.dumps(((x, y), [x[:1]]), protocol=protocol)
    (bx, by), [bx1] = restricted_load(io.BytesIO(blob))
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(by, y)
    np.testing.assert_array_equal(bx1, x[:1])
    assert bx.dtype == np.float32 and by.dtype == np.int64


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def test_restricted_load_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps((np.zeros(2), _Evil(f"touch {marker}")), protocol=2)
    with pytest.raises(DataError, match="refusing pickle global .*system"):
        restricted_load(io.BytesIO(blob))
    assert not marker.exists()


class _Codec:
    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (codecs.encode, ("payload", "rot13"))


def test_restricted_load_admits_codecs_encode_only_for_latin1() -> None:
    with pytest.raises(DataError, match="refusing pickle global _codecs.encode"):
        restricted_load(io.BytesIO(pickle.dumps(_Codec(), protocol=2)))


def test_restricted_load_refuses_other_numpy_globals() -> None:
    blob = pickle.dumps(np.float64(1.5), protocol=2)  # numpy scalars need multiarray.scalar
    with pytest.raises(DataError, match="refusing pickle global"):
        restricted_load(io.BytesIO(blob))


# --------------------------------------------------------------------------- pkl -> IDX


def _fake_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random bytes and labels, and the floats byte/256 the classic pickle stores."""
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.int64)
    return images, labels, (images.reshape(n, 784) / np.float32(256)).astype(np.float32)


def test_pkl_to_idx_byte_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tr_i, tr_l, tr_f), (va_i, va_l, va_f), (te_i, te_l, te_f) = (_fake_split(rng, n) for n in (3, 1, 2))
    # Through a Python 2 style pickle and the restricted loader, as the real route goes.
    blob = pickle.dumps(((tr_f, tr_l), (va_f, va_l), (te_f, te_l)), protocol=2)
    splits = restricted_load(io.BytesIO(gzip.decompress(gzip.compress(blob))))
    pkl_to_idx(splits, tmp_path)

    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), np.concatenate([tr_i, va_i]))
    np.testing.assert_array_equal(read_idx(tmp_path / "train-labels-idx1-ubyte"), np.concatenate([tr_l, va_l]))
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte"), te_i)
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-labels-idx1-ubyte"), te_l)
    assert read_idx(tmp_path / "train-images-idx3-ubyte").shape == (4, 28, 28)
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte").shape == (2,)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(MNIST_MD5)


def test_pkl_to_idx_rejects_wrong_shape(tmp_path: Path) -> None:
    bad = np.zeros((2, 10), dtype=np.float32)
    labels = np.zeros(2, dtype=np.int64)
    with pytest.raises(DataError, match="784"):
        pkl_to_idx(((bad, labels), (bad, labels), (bad, labels)), tmp_path)


def test_pkl_to_idx_rejects_wrong_structure(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        pkl_to_idx((1, 2), tmp_path)


# --------------------------------------------------------------------------- fetch (offline parts)


def test_fetch_does_nothing_when_verified(tiny_raw: tuple[Path, dict[str, str]]) -> None:
    raw_dir, md5s = tiny_raw

    def must_not_run(staging: Path, log: object) -> Path:
        raise AssertionError("a route ran although the files verify")

    messages: list[str] = []
    assert acquire._fetch(raw_dir, md5s, "mnist", [must_not_run], messages.append) == []
    assert "already present" in messages[0]


def test_fetch_leaves_raw_dir_clean_when_routes_fail(tmp_path: Path) -> None:
    raw_dir = tmp_path / "MNIST" / "raw"
    md5s = {"a": hashlib.md5(b"good").hexdigest(), "b": hashlib.md5(b"good").hexdigest()}

    def half_right(staging: Path, log: object) -> Path:
        (staging / "a").write_bytes(b"good")
        (staging / "b").write_bytes(b"bad")  # one file fails its MD5: nothing may be installed
        return staging

    def broken(staging: Path, log: object) -> Path:
        raise DataError("route unavailable")

    failures = acquire._fetch(raw_dir, md5s, "mnist", [half_right, broken], lambda m: None)
    assert len(failures) == 2 and "route unavailable" in failures[1]
    assert list(raw_dir.iterdir()) == []
    assert [p.name for p in raw_dir.parent.iterdir()] == ["raw"]  # staging folders removed


def test_fetch_fashion_without_debian_files_says_apt_get(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(class_name: str):
        def route(staging: Path, log: object) -> Path:
            raise DataError("torchvision download failed (offline)")

        return route

    monkeypatch.setattr(acquire, "_torchvision_route", offline)
    monkeypatch.setattr(acquire, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError) as info:
        acquire.fetch_fashion_mnist(tmp_path / "FashionMNIST" / "raw", lambda m: None)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "\n" not in message


# --------------------------------------------------------------------------- real data, if any


def test_real_mnist_files_verify() -> None:
    """Reads ~55 MB: about a quarter of a second. Skipped without VAEZOO_DATA."""
    root = os.environ.get("VAEZOO_DATA")
    if not root:
        pytest.skip("VAEZOO_DATA is not set")
    raw_dir = Path(root) / "MNIST" / "raw"
    if not raw_dir.is_dir():
        pytest.skip(f"{raw_dir} does not exist")
    verify_files(raw_dir, MNIST_MD5, "mnist")
