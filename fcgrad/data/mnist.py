"""Locate and load MNIST from the data directory (``<data_dir>/mnist/*.gz``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fcgrad.data.idx import read_idx
from fcgrad.data.mirrors import MNIST_FILES, MnistFile
from fcgrad.errors import DataError, IDXError

DATA_DIR_ENV = "FCGRAD_DATA_DIR"
N_CLASSES = 10


def default_data_dir() -> Path:
    """The data directory: $FCGRAD_DATA_DIR if set, else ``./data``."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else Path("data")


def mnist_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The folder that holds the four MNIST files: ``<data_dir>/mnist``."""
    return Path(data_dir) / "mnist"


def missing_mnist_files(data_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the MNIST files absent from ``<data_dir>/mnist`` (empty when all are there)."""
    folder = mnist_dir(data_dir)
    return [spec.name for spec in MNIST_FILES if not (folder / spec.name).is_file()]


def _load_checked(folder: Path, spec: MnistFile) -> np.ndarray:
    path = folder / spec.name
    redownload = f"run `fcgrad download mnist --force --data-dir {folder.parent}`"
    try:
        array = read_idx(path)
    except IDXError as exc:
        raise DataError(f"{exc}; {redownload}") from None
    if array.dtype != np.dtype(spec.dtype) or array.shape != spec.shape:
        raise DataError(
            f"{path}: holds {array.dtype} {array.shape}, expected {spec.dtype} {spec.shape}; "
            f"{redownload}"
        )
    return array


def _images(raw: np.ndarray, flat: bool) -> np.ndarray:
    x = raw.astype(np.float32)
    x /= np.float32(255.0)
    return x.reshape(len(x), -1) if flat else x


def _labels(raw: np.ndarray, path: Path) -> np.ndarray:
    if raw.size and int(raw.max()) >= N_CLASSES:
        raise DataError(
            f"{path}: label {int(raw.max())} is not a digit; "
            f"run `fcgrad download mnist --force --data-dir {path.parent.parent}`"
        )
    return raw.astype(np.int64)


def load_mnist(
    data_dir: str | os.PathLike[str], flat: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST as ``(x_train, y_train, x_valid, y_valid)``; validation is the t10k set.

    x: float32 pixels in [0, 1] (uint8 / 255), shape (60000, 784) / (10000, 784),
    or (N, 28, 28) when ``flat=False``. y: int64 digits 0..9, shape (60000,) / (10000,).
    Raises DataError if a file is missing (the message says to run `fcgrad download
    mnist --data-dir DATA_DIR`) or holds the wrong data (the same, with --force).
    """
    folder = mnist_dir(data_dir)
    missing = missing_mnist_files(data_dir)
    if missing:
        raise DataError(
            f"MNIST file(s) missing from {folder}: {', '.join(missing)}; "
            f"run `fcgrad download mnist --data-dir {folder.parent}`"
        )
    tr_x, tr_y, va_x, va_y = (_load_checked(folder, spec) for spec in MNIST_FILES)
    return (
        _images(tr_x, flat),
        _labels(tr_y, folder / MNIST_FILES[1].name),
        _images(va_x, flat),
        _labels(va_y, folder / MNIST_FILES[3].name),
    )
