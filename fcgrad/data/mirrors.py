"""Where the MNIST files come from: the file specs and the list of mirrors to try.

A mirror is an http(s) base URL or a local folder (a plain path or a ``file://`` URL)
holding the four ``.gz`` files, so an offline machine can "download" from a copy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from fcgrad.errors import ConfigError
from fcgrad.fileio import short_path

MIRRORS_ENV = "FCGRAD_MNIST_MIRRORS"

DEFAULT_MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


@dataclass(frozen=True)
class MnistFile:
    """One MNIST file: its name, the size (bytes) and SHA-256 of its uncompressed IDX
    content (header included), and the dtype and shape its IDX header must declare."""

    name: str
    raw_size: int
    raw_sha256: str
    dtype: str
    shape: tuple[int, ...]


MNIST_FILES: tuple[MnistFile, ...] = (
    MnistFile(
        "train-images-idx3-ubyte.gz",
        47040016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "uint8",
        (60000, 28, 28),
    ),
    MnistFile(
        "train-labels-idx1-ubyte.gz",
        60008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "uint8",
        (60000,),
    ),
    MnistFile(
        "t10k-images-idx3-ubyte.gz",
        7840016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "uint8",
        (10000, 28, 28),
    ),
    MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        10008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "uint8",
        (10000,),
    ),
)


def mnist_file(name: str) -> MnistFile:
    """The spec of the MNIST file called `name`; raises ConfigError for an unknown name."""
    for spec in MNIST_FILES:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown MNIST file {name!r}")


@dataclass(frozen=True)
class Mirror:
    """A place to fetch files from.

    kind "http": `location` is an http(s) base URL ending in "/";
    kind "local": `location` is an absolute folder path.
    """

    kind: Literal["http", "local"]
    location: str

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def url(self, name: str) -> str:
        """Where file `name` lives on this mirror: a URL, or a path for a local folder."""
        if self.is_local:
            return str(Path(self.location) / name)
        return self.location + name

    def __str__(self) -> str:
        return self.location


def _http_mirror(value: str) -> Mirror | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:  # e.g. "http://[::1" or a non-numeric port
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if parts.query or parts.fragment:
        return None
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return Mirror("http", f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}")


def _local_mirror(value: str) -> Mirror | None:
    if value.lower().startswith("file://"):
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost"):
            return None
        folder = Path(url2pathname(unquote(parts.path)))
    elif "://" in value:
        return None
    else:
        folder = Path(value).expanduser()
    try:
        if not folder.is_dir():
            return None
        return Mirror("local", str(folder.resolve()))
    except (OSError, RuntimeError):  # a path too long for the system, a symlink loop
        return None


def parse_mirror(value: str, origin: str = "mirror", *, param: str | None = None) -> Mirror:
    """Turn one mirror string into a Mirror.

    Accepts an http(s) URL or an existing folder (plain path or file:// URL).
    Raises ConfigError naming `value` and `origin`, where it came from (a value of the
    parameter `param` carries that name as the error's `param`), otherwise.
    """
    text = value.strip()
    if not text:
        raise ConfigError(
            f"empty MNIST mirror ({origin}): give an http(s) URL or a folder", param=param
        )
    lowered = text.lower()
    is_http = lowered.startswith(("http://", "https://"))
    mirror = _http_mirror(text) if is_http else _local_mirror(text)
    if mirror is None:
        raise ConfigError(
            f"bad MNIST mirror {short_path(repr(value))} ({origin}): it is neither an http(s) URL "
            "nor an existing folder",
            param=param,
        )
    return mirror


def _env_values(env: Mapping[str, str]) -> list[str]:
    return [v for v in re.split(r"[,\s]+", env.get(MIRRORS_ENV, "")) if v]


def resolve_mirrors(
    user_mirrors: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    defaults: Iterable[str] = DEFAULT_MNIST_MIRRORS,
) -> list[Mirror]:
    """The mirrors to try, in order: `user_mirrors` (e.g. --mirror values), then the
    comma- or whitespace-separated FCGRAD_MNIST_MIRRORS of `env` (default os.environ),
    then `defaults`; duplicates dropped. An empty --mirror value is an error (it would
    otherwise quietly fall through to the internet mirrors); blanks in the variable are
    separators.

    Raises ConfigError naming any value that is neither http(s) nor an existing folder
    (for one of `user_mirrors`, the origin in its message and its param are "user_mirrors").
    """
    env = os.environ if env is None else env
    sources = [
        *((v, "user_mirrors", "user_mirrors") for v in user_mirrors),
        *((v, MIRRORS_ENV, None) for v in _env_values(env)),
        *((v, "default", None) for v in defaults),
    ]
    mirrors: list[Mirror] = []
    for value, origin, param in sources:
        mirror = parse_mirror(value, origin, param=param)
        if mirror not in mirrors:
            mirrors.append(mirror)
    return mirrors
