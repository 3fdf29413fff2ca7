"""The data layer: IDX files, MNIST mirrors, download with verification, and loading."""

from fcgrad.data.download import (
    DownloadProgress,
    DownloadReport,
    FileResult,
    download_mnist,
    verify_file,
)
from fcgrad.data.idx import (
    MAX_PAYLOAD_BYTES,
    IDXHeader,
    IDXStream,
    parse_idx,
    parse_idx_header,
    read_idx,
    write_idx,
)
from fcgrad.data.mirrors import (
    DEFAULT_MNIST_MIRRORS,
    MIRRORS_ENV,
    MNIST_FILES,
    Mirror,
    MnistFile,
    mnist_file,
    parse_mirror,
    resolve_mirrors,
)
from fcgrad.data.mnist import (
    DATA_DIR_ENV,
    default_data_dir,
    load_mnist,
    missing_mnist_files,
    mnist_dir,
)

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_MNIST_MIRRORS",
    "MAX_PAYLOAD_BYTES",
    "MIRRORS_ENV",
    "MNIST_FILES",
    "DownloadProgress",
    "DownloadReport",
    "FileResult",
    "IDXHeader",
    "IDXStream",
    "Mirror",
    "MnistFile",
    "default_data_dir",
    "download_mnist",
    "load_mnist",
    "missing_mnist_files",
    "mnist_dir",
    "mnist_file",
    "parse_idx",
    "parse_idx_header",
    "parse_mirror",
    "read_idx",
    "resolve_mirrors",
    "verify_file",
    "write_idx",
]
