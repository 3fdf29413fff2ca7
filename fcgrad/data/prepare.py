"""MNIST made ready for a command: where it lives and where to fetch it from (`Source`),
fetching it from the resolved mirrors (`fetch_mnist`), and loading it normalized with the
training statistics, fetched first when it is missing and that is allowed (`prepare_mnist`).

Like the rest of the core this never prints: a caller that shows a download passes
`display` (which opens its display and yields the `DownloadProgress` to feed) and, to say
that a missing MNIST is fetched first, `before_fetch`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fcgrad.data import (
    DEFAULT_MNIST_MIRRORS,
    DownloadProgress,
    DownloadReport,
    Mirror,
    download_mnist,
    load_mnist,
    missing_mnist_files,
    resolve_mirrors,
)
from fcgrad.data.normalize import NormalizeReport, Stats, normalize_pair
from fcgrad.errors import ConfigError

Display = Callable[[], AbstractContextManager[DownloadProgress]]
"""Opens the caller's display of a download for the `with` block; the download's progress
goes to the `DownloadProgress` it yields."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where MNIST lives (`data_dir`) and where to fetch it from when it is not there:
    `mirrors` first, then $FCGRAD_MNIST_MIRRORS, then the built-in internet mirrors if
    `default_mirrors`. `download`: whether a missing MNIST may be fetched at all."""

    data_dir: Path
    mirrors: tuple[str, ...] = ()
    default_mirrors: bool = True
    download: bool = True


class Prepared(NamedTuple):
    """MNIST normalized in place with the training statistics, and the normalization's report."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    stats: Stats
    report: NormalizeReport


def fetch_mnist(
    source: Source,
    *,
    force: bool = False,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 0.5,
    display: Display | None = None,
) -> DownloadReport:
    """`download_mnist` into `source.data_dir` from the source's resolved mirrors, inside
    `display()` when given (opened once the mirrors are resolved).

    Raises what `resolve_mirrors` and `download_mnist` raise: ConfigError for a bad mirror or
    none at all (param `mirrors`), or timeout/retries/backoff out of range; DownloadError;
    DataError.
    """
    mirrors = _resolved(source)
    shown = display() if display is not None else contextlib.nullcontext()
    with shown as progress:
        return download_mnist(
            source.data_dir,
            mirrors,
            force=force,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            progress=progress,
        )


def _resolved(source: Source) -> list[Mirror]:
    """The source's mirrors, resolved; a ConfigError about one of them is about `mirrors`
    (this module's name for them), not `user_mirrors` (resolve_mirrors' name)."""
    defaults = DEFAULT_MNIST_MIRRORS if source.default_mirrors else ()
    try:
        return resolve_mirrors(source.mirrors, defaults=defaults)
    except ConfigError as e:
        if e.param != "user_mirrors":
            raise
        raise ConfigError(str(e).replace("user_mirrors", "mirrors"), param="mirrors") from None


def prepare_mnist(
    source: Source,
    *,
    display: Display | None = None,
    before_fetch: Callable[[Path], None] | None = None,
) -> Prepared:
    """Load MNIST from `source.data_dir` and normalize both sets in place with the training
    mean and std (no copy of the 188 MB training matrix).

    When files are missing and `source.download` allows it, `fetch_mnist` them first with
    its default timeout and retries: `before_fetch(data_dir)` is called just before, and the
    download is shown in `display()`. Raises DataError when files are missing (and may not
    be fetched) or are corrupt, and whatever `fetch_mnist` raises.
    """
    if missing_mnist_files(source.data_dir) and source.download:
        if before_fetch is not None:
            before_fetch(source.data_dir)
        fetch_mnist(source, display=display)
    x_train, y_train, x_valid, y_valid = load_mnist(source.data_dir)
    x_train, x_valid, stats, report = normalize_pair(x_train, x_valid, inplace=True)
    return Prepared(x_train, y_train, x_valid, y_valid, stats, report)
