"""Locate and load MNIST from the data directory (``<data_dir>/mnist/*.gz``).

Loading checks what it reads: the IDX header's dtype and shape every time, and the
SHA-256 of each file's uncompressed content the first time that file (by name, size,
mtime and inode) is loaded. Verified files are remembered in ``mnist/.verified.json``
(written atomically; best effort, so a read-only folder only costs the hash each time).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fcgrad.data.idx import CHUNK_BYTES, IDXStream
from fcgrad.data.mirrors import MNIST_FILES, MnistFile
from fcgrad.errors import ConfigError, DataError, FcgradError, IDXError
from fcgrad.fileio import atomic_path, short_path

DATA_DIR_ENV = "FCGRAD_DATA_DIR"
N_CLASSES = 10
VERIFIED_STAMP = ".verified.json"
"""File in the mnist folder listing the files whose SHA-256 has been checked."""
_STAMP_VERSION = 1


def default_data_dir() -> Path:
    """The data directory: $FCGRAD_DATA_DIR if set, else ``./data``."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else Path("data")


def mnist_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The folder that holds the four MNIST files: ``<data_dir>/mnist``."""
    return Path(data_dir) / "mnist"


def check_data_dir(data_dir: str | os.PathLike[str]) -> None:
    """ConfigError (param `data_dir`) when ``<data_dir>/mnist`` is a path the system
    cannot look at (a name too long for it, a symlink loop); a folder that does not exist
    yet is fine. Every later look would raise OSError, a traceback."""
    try:
        mnist_dir(data_dir).stat()
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"data_dir {short_path(data_dir)} cannot be used: {reason}", param="data_dir"
        ) from None


def missing_mnist_files(data_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the MNIST files absent from ``<data_dir>/mnist`` (empty when all are there)."""
    folder = mnist_dir(data_dir)
    return [spec.name for spec in MNIST_FILES if not (folder / spec.name).is_file()]


def _stamp_entry(st: os.stat_result, spec: MnistFile) -> dict[str, Any]:
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
        "raw_sha256": spec.raw_sha256,
    }


def read_verified_stamp(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The entries of ``<folder>/.verified.json``: file name -> {size, mtime_ns, inode,
    raw_sha256}. Empty when the stamp is missing or unreadable."""
    try:
        data = json.loads((Path(folder) / VERIFIED_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _STAMP_VERSION:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(v, dict)}


def _write_stamp(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """Atomically replace the stamp (`atomic_path`, which also removes the temporaries of
    a writer killed mid-write); silently does nothing if the folder is read-only or full."""
    text = json.dumps({"version": _STAMP_VERSION, "files": files}, indent=1, sort_keys=True)
    stamp = folder / VERIFIED_STAMP
    with contextlib.suppress(FcgradError, OSError), atomic_path(stamp) as tmp:  # saves time only
        tmp.write_text(text, encoding="utf-8")


def _redownload(folder: Path) -> str:
    return f"run `fcgrad download mnist --force --data-dir {folder.parent}`"


def _read(path: Path, spec: MnistFile, *, verify: bool) -> tuple[IDXStream, os.stat_result]:
    """Decode the file at `path` (hashing its uncompressed bytes if `verify`); its header
    must be the one `spec` expects before any of its payload is kept."""
    stream = IDXStream(str(path), hash_raw=verify, expect=(spec.dtype, spec.shape))
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                stream.feed(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    stream.finish()
    return stream, st


def _load_checked(
    folder: Path, spec: MnistFile, stamps: dict[str, dict[str, Any]], fresh: dict[str, Any]
) -> np.ndarray:
    """Read one file, check its header (and its SHA-256 unless the stamp vouches for it);
    a file newly verified goes into `fresh`."""
    path = folder / spec.name
    try:
        known = stamps.get(spec.name) == _stamp_entry(path.stat(), spec)
    except OSError:
        known = False
    try:
        stream, st = _read(path, spec, verify=not known)
    except IDXError as exc:
        raise DataError(f"{exc}; {_redownload(folder)}") from None
    array = stream.array()
    if array.dtype != np.dtype(spec.dtype) or array.shape != spec.shape:
        raise DataError(
            f"{path}: holds {array.dtype} {array.shape}, expected {spec.dtype} {spec.shape}; "
            f"{_redownload(folder)}"
        )
    if array.ndim == 1 and array.size and int(array.max()) >= N_CLASSES:
        raise DataError(f"{path}: label {int(array.max())} is not a digit; {_redownload(folder)}")
    if not known:
        digest = stream.raw_sha256()
        if stream.raw_size != spec.raw_size or digest != spec.raw_sha256:
            raise DataError(
                f"{path}: corrupt, or not the MNIST file (the SHA-256 of its content is "
                f"{digest[:12]}..., expected {spec.raw_sha256[:12]}...); {_redownload(folder)}"
            )
        fresh[spec.name] = _stamp_entry(st, spec)
    return array


def _images(raw: np.ndarray, flat: bool) -> np.ndarray:
    x = raw.astype(np.float32)
    x /= np.float32(255.0)
    return x.reshape(len(x), -1) if flat else x


def _labels(raw: np.ndarray) -> np.ndarray:
    return raw.astype(np.int64)


def load_mnist(
    data_dir: str | os.PathLike[str], flat: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST as ``(x_train, y_train, x_valid, y_valid)``; validation is the t10k set.

    x: float32 pixels in [0, 1] (uint8 / 255), shape (60000, 784) / (10000, 784),
    or (N, 28, 28) when ``flat=False``. y: int64 digits 0..9, shape (60000,) / (10000,).
    The first load of a file also checks the SHA-256 of its uncompressed content and
    records it in ``mnist/.verified.json``, so later loads only decode.
    Raises DataError if a file is missing (the message says to run `fcgrad download
    mnist --data-dir DATA_DIR`) or is truncated, corrupt or holds the wrong data (the
    message names the file and says to run the same with --force).
    """
    folder = mnist_dir(data_dir)
    for spec in MNIST_FILES:  # there, but a folder or a device: no download can replace it
        path = folder / spec.name
        if (path.exists() or path.is_symlink()) and not path.is_file():
            raise DataError(
                f"{short_path(path)} is not a regular file; remove it, then run fcgrad again"
            )
    missing = missing_mnist_files(data_dir)
    if missing:
        raise DataError(
            f"MNIST file(s) missing from {short_path(folder)}: {', '.join(missing)}; "
            f"run `fcgrad download mnist --data-dir {folder.parent}`"  # (whole: to paste)
        )
    stamps = read_verified_stamp(folder)
    fresh: dict[str, Any] = {}
    try:
        tr_x, tr_y, va_x, va_y = [_load_checked(folder, s, stamps, fresh) for s in MNIST_FILES]
    finally:
        if fresh:
            _write_stamp(folder, {**stamps, **fresh})
    return (
        _images(tr_x, flat),
        _labels(tr_y),
        _images(va_x, flat),
        _labels(va_y),
    )
