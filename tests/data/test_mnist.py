"""load_mnist on the real data (downloaded once per session) and on broken folders."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fcgrad.data import default_data_dir, load_mnist, missing_mnist_files, mnist_dir, write_idx
from fcgrad.data import mnist as mnist_module
from fcgrad.errors import DataError

NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(scope="module")
def mnist(mnist_data_dir: Path) -> tuple[np.ndarray, ...]:
    return load_mnist(mnist_data_dir)


def test_shapes_and_dtypes(mnist: tuple[np.ndarray, ...]) -> None:
    x_train, y_train, x_valid, y_valid = mnist
    assert x_train.shape == (60000, 784) and x_train.dtype == np.float32
    assert x_valid.shape == (10000, 784) and x_valid.dtype == np.float32
    assert y_train.shape == (60000,) and y_train.dtype == np.int64
    assert y_valid.shape == (10000,) and y_valid.dtype == np.int64


def test_values(mnist: tuple[np.ndarray, ...]) -> None:
    x_train, y_train, x_valid, y_valid = mnist
    for x in (x_train, x_valid):
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (y_train, y_valid):
        assert set(np.unique(y).tolist()) == set(range(10))
    assert y_train[0] == 5
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_valid[:5].tolist() == [7, 2, 1, 0, 4]
    # the lesson's normalisation constants
    assert x_train.mean(dtype=np.float64) == pytest.approx(0.13066, abs=1e-4)
    assert x_train.std(dtype=np.float64) == pytest.approx(0.30811, abs=1e-4)


def test_pixels_are_uint8_over_255(mnist: tuple[np.ndarray, ...], shared_mnist: Path) -> None:
    raw = gzip.decompress((shared_mnist / NAMES[2]).read_bytes())
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(10000, 784)
    np.testing.assert_array_equal(mnist[2], pixels.astype(np.float32) / np.float32(255))


def test_not_flat(mnist_data_dir: Path, mnist: tuple[np.ndarray, ...]) -> None:
    x_train, y_train, x_valid, y_valid = load_mnist(mnist_data_dir, flat=False)
    assert x_train.shape == (60000, 28, 28) and x_valid.shape == (10000, 28, 28)
    assert x_train.dtype == np.float32
    np.testing.assert_array_equal(x_train.reshape(60000, 784), mnist[0])
    np.testing.assert_array_equal(y_train, mnist[1])
    np.testing.assert_array_equal(y_valid, mnist[3])


def labels_only_dir(tmp_path: Path, mnist_data_dir: Path) -> Path:
    """A data dir with symlinks to the real files (cheap to break one)."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in NAMES:
        (folder / name).symlink_to(mnist_data_dir / "mnist" / name)
    return tmp_path / "data"


def with_idx(
    tmp_path: Path, mnist_data_dir: Path, name: str, array: np.ndarray
) -> tuple[Path, Path]:
    """A `labels_only_dir` whose file `name` is an IDX file of `array`: (data dir, that file)."""
    data_dir = labels_only_dir(tmp_path, mnist_data_dir)
    target = mnist_dir(data_dir) / name
    target.unlink()
    write_idx(target, array)
    return data_dir, target


@pytest.mark.parametrize("name", NAMES)
def test_missing_file_is_data_error_naming_it(
    tmp_path: Path, mnist_data_dir: Path, name: str
) -> None:
    data_dir = labels_only_dir(tmp_path, mnist_data_dir)
    (mnist_dir(data_dir) / name).unlink()
    assert missing_mnist_files(data_dir) == [name]
    with pytest.raises(DataError) as info:
        load_mnist(data_dir)
    assert name in str(info.value)
    assert "fcgrad download mnist" in str(info.value)
    for other in set(NAMES) - {name}:
        assert other not in str(info.value)


def test_empty_data_dir_lists_all(tmp_path: Path) -> None:
    assert missing_mnist_files(tmp_path) == NAMES
    with pytest.raises(DataError, match="fcgrad download mnist"):
        load_mnist(tmp_path)


def test_wrong_shape_suggests_force(tmp_path: Path, mnist_data_dir: Path) -> None:
    data_dir, target = with_idx(tmp_path, mnist_data_dir, NAMES[3], np.zeros(9999, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_mnist(data_dir)
    assert str(target) in str(info.value)
    assert "(9999,)" in str(info.value)
    assert "fcgrad download mnist --force --data-dir" in str(info.value)


def test_wrong_dtype_suggests_force(tmp_path: Path, mnist_data_dir: Path) -> None:
    data_dir, _ = with_idx(tmp_path, mnist_data_dir, NAMES[1], np.zeros(60000, dtype=np.int16))
    with pytest.raises(DataError, match=r"int16.*--force"):
        load_mnist(data_dir)


def test_corrupt_file_is_data_error(tmp_path: Path, mnist_data_dir: Path) -> None:
    data_dir = labels_only_dir(tmp_path, mnist_data_dir)
    target = mnist_dir(data_dir) / NAMES[1]
    target.unlink()
    shutil.copy(mnist_data_dir / "mnist" / NAMES[1], target)
    target.write_bytes(target.read_bytes()[:-20])
    with pytest.raises(DataError) as info:
        load_mnist(data_dir)
    assert str(target) in str(info.value)
    assert "corrupt gzip stream" in str(info.value)
    assert "--force" in str(info.value)


def test_labels_out_of_range(tmp_path: Path, mnist_data_dir: Path) -> None:
    data_dir, _ = with_idx(tmp_path, mnist_data_dir, NAMES[3], np.full(10000, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="not a digit"):
        load_mnist(data_dir)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FCGRAD_DATA_DIR", raising=False)
    assert default_data_dir() == Path("data")
    monkeypatch.setenv("FCGRAD_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert mnist_dir(tmp_path) == tmp_path / "mnist"


# ----------------------------------------------------------------------------- verified stamp


@pytest.fixture
def private_dir(tmp_path: Path, shared_mnist: Path) -> Path:
    """A data dir with real copies of the four files (its stamp is its own)."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in NAMES:
        shutil.copy(shared_mnist / name, folder / name)
    return tmp_path / "data"


def hashing_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the files load_mnist reads with SHA-256 hashing on."""
    seen: list[str] = []
    real = mnist_module.IDXStream

    def spy(source: str, **kw: object) -> object:
        if kw.get("hash_raw"):
            seen.append(Path(source).name)
        return real(source, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mnist_module, "IDXStream", spy)
    return seen


def test_first_load_verifies_and_stamps_later_loads_skip_the_hash(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = hashing_loads(monkeypatch)
    stale = private_dir / "mnist" / "..verified.json.k1ll3d.part"  # a killed writer's
    stale.write_text('{"version": ')
    first = load_mnist(private_dir)
    assert hashed == NAMES
    stamp = json.loads((private_dir / "mnist" / ".verified.json").read_text())
    assert sorted(stamp["files"]) == sorted(NAMES)
    for name, entry in stamp["files"].items():
        st = (private_dir / "mnist" / name).stat()
        assert (entry["size"], entry["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    hashed.clear()
    for _ in range(3):
        again = load_mnist(private_dir)
    assert hashed == []  # the stamp is trusted: no file is hashed again (timings: bench's job)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (private_dir / "mnist").iterdir()) == sorted(
        [*NAMES, ".verified.json"]
    )  # no temp file left by the atomic write, and the killed writer's removed


def test_a_file_changed_after_verification_is_verified_again(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_mnist(private_dir)
    hashed = hashing_loads(monkeypatch)
    path = private_dir / "mnist" / NAMES[3]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # still a digit, still a valid gzip and IDX file
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as info:
        load_mnist(private_dir)
    assert hashed == [NAMES[3]]
    assert str(path) in str(info.value) and "SHA-256" in str(info.value)
    assert "fcgrad download mnist --force --data-dir" in str(info.value)


def test_a_broken_stamp_is_ignored_and_rewritten(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = private_dir / "mnist" / ".verified.json"
    stamp.write_text("{not json")
    hashed = hashing_loads(monkeypatch)
    load_mnist(private_dir)
    assert hashed == NAMES
    assert sorted(json.loads(stamp.read_text())["files"]) == sorted(NAMES)


def test_an_unwritable_stamp_does_not_stop_loading(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kw: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    x_train, *_ = load_mnist(private_dir)
    assert x_train.shape == (60000, 784)
    assert not (private_dir / "mnist" / ".verified.json").exists()


def test_a_crafted_cached_file_is_refused_from_its_header(
    tmp_path: Path, mnist_data_dir: Path
) -> None:
    """Issue #13: a 2 MB file in the cache whose header claims 2 GB (within the IDX
    reader's limit) and whose payload inflates to them cost 4 GB of RAM before it was
    refused. The header is now checked against the expected one before any payload is
    kept."""
    import struct
    import tracemalloc
    import zlib

    data_dir = tmp_path / "data"
    shutil.copytree(mnist_dir(mnist_data_dir), mnist_dir(data_dir))
    header = b"\x00\x00\x08\x03" + struct.pack(">III", 60000, 188, 188)  # 2.1 GB of uint8
    zeros = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    blob = zeros.compress(header) + zeros.compress(bytes(2**24)) + zeros.flush()  # its start
    target = mnist_dir(data_dir) / NAMES[0]
    target.write_bytes(blob)
    assert len(blob) < 4 * 2**20
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            load_mnist(data_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "IDX header says uint8 (60000, 188, 188), expected uint8 (60000, 28, 28)" in str(
        info.value
    )
    assert peak < 64 * 2**20


def test_a_folder_named_like_an_mnist_file_says_to_remove_it(
    tmp_path: Path, mnist_data_dir: Path
) -> None:
    """Issue #13: it was reported missing, and the download it suggested refused it."""
    data_dir = tmp_path / "data"
    shutil.copytree(mnist_dir(mnist_data_dir), mnist_dir(data_dir))
    target = mnist_dir(data_dir) / NAMES[3]
    target.unlink()
    target.mkdir()
    with pytest.raises(DataError) as info:
        load_mnist(data_dir)
    assert str(info.value) == f"{target} is not a regular file; remove it, then run fcgrad again"
