"""Download and verify the four MNIST files into ``<data_dir>/mnist/``.

Each file is tried on each mirror in order. A transient failure -- HTTP 408, 425, 429,
500, 502, 503 or 504, a timeout, a connection reset or closed, a body cut short -- is
retried on the same mirror, at most `retries` more times, after an exponential backoff
(`backoff`, then twice that, ...; at most MAX_BACKOFF_SECONDS of sleep per call). Any
other failure (refused connection, 403, 404, an HTML page, bytes that are not the file:
wrong IDX header, uncompressed size or SHA-256) moves straight on to the next mirror.

Bytes go to ``.NAME.<random>.part`` in the same folder, locked while a run writes it.
A transfer that breaks off (a transient failure, Ctrl-C) keeps that file, and the next
attempt -- in this run or the next -- resumes it with ``Range: bytes=N-`` after
re-feeding its bytes to the verifier (a server that answers 200 is read from the start).
A file is verified by its *uncompressed* IDX content, so the official ``.gz`` files and
recompressed copies both pass; only a verified file is fsynced and renamed to its final
name. Bytes that fail verification are dropped; when they were a resumed transfer the
mirror is tried again from byte 0, since the two halves may be different compressions.
A write error (a full disk) is a DataError naming the folder, not a mirror failure.

This module runs the files; the pieces live beside it: `transfer` (one file from one
mirror: HTTP, timeouts, retries, backoff), `verify` (the checks against a MnistFile),
`partfile` (the locked ``.part`` file and its atomic rename), `report` (FileResult,
DownloadReport, DownloadProgress).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import requests

from fcgrad.data.deadline import watched_session
from fcgrad.data.mirrors import MNIST_FILES, Mirror, MnistFile
from fcgrad.data.mnist import mnist_dir
from fcgrad.data.partfile import LocalError, PartFile, remove_stale_parts
from fcgrad.data.report import DownloadProgress, DownloadReport, FileResult, NoProgress
from fcgrad.data.transfer import (
    HTTP_CHUNK_BYTES,
    MAX_BACKOFF_SECONDS,
    TRANSIENT_HTTP_STATUS,
    UNANSWERED,
    Job,
    try_mirror,
)
from fcgrad.data.verify import verify_file
from fcgrad.errors import ConfigError, DataError, DownloadError
from fcgrad.fileio import short_path

__all__ = [  # the public names, as before report, verify, partfile and transfer split off
    "HTTP_CHUNK_BYTES",
    "MAX_BACKOFF_SECONDS",
    "TRANSIENT_HTTP_STATUS",
    "DownloadProgress",
    "DownloadReport",
    "FileResult",
    "download_mnist",
    "verify_file",
]


def _fetch(spec: MnistFile, mirrors: Sequence[Mirror], job: Job) -> FileResult:
    attempts: list[tuple[str, str]] = []
    part = PartFile.claim(job.folder, spec.name)
    keep = True  # an interrupted or failed transfer keeps its bytes for the next run
    try:
        for mirror in mirrors:
            url = try_mirror(spec, mirror, part, job, attempts)
            if url is not None:
                path = job.folder / spec.name
                return FileResult(
                    spec.name,
                    path,
                    path.stat().st_size,
                    spec.raw_sha256,
                    "downloaded",
                    mirror.url(spec.name),
                    attempts,
                    url,
                )
    except LocalError as exc:
        keep = False  # a full disk gets its space back
        raise exc.data_error(job.folder, spec.name) from None
    finally:
        part.close(keep)
    tried = tried_text(attempts) or "every mirror timed out on an earlier file"
    raise DownloadError(f"could not download {spec.name}: {tried}; {_hint(mirrors, attempts)}")


def tried_text(attempts: Sequence[tuple[str, str]]) -> str:
    """Each URL tried once, with its reasons in order, a repeated one counted: `URL (timed
    out x2)`, `URL (body cut short ...; timed out)`; URLs joined by '; '."""
    reasons: dict[str, list[str]] = {}
    for url, reason in attempts:
        reasons.setdefault(url, []).append(reason)
    return "; ".join(f"{short_path(url)} ({_counted(said)})" for url, said in reasons.items())


def _counted(reasons: list[str]) -> str:
    counts = Counter(reasons)  # (in the order first seen)
    return "; ".join(r if n == 1 else f"{r} x{n}" for r, n in counts.items())


def _hint(mirrors: Sequence[Mirror], attempts: Sequence[tuple[str, str]]) -> str:
    """What to do next: "offline?" only when no server answered at all."""
    if all(m.is_local for m in mirrors):
        return "give a mirror folder that holds the four MNIST .gz files"
    if all(reason in UNANSWERED for _, reason in attempts):
        return "offline? give a mirror: a folder or a reachable URL holding the four files"
    return "give another mirror: a folder or a URL holding the four MNIST .gz files"


def _ensure(spec: MnistFile, mirrors: Sequence[Mirror], job: Job, force: bool) -> FileResult:
    path = job.folder / spec.name
    if path.exists() and not path.is_file():  # a local problem: no mirror can fix it
        raise DataError(f"{path} exists but is not a regular file; move it away and run again")
    if not force and path.is_file() and verify_file(path, spec) is None:
        remove_stale_parts(job.folder, spec.name)
        return FileResult(spec.name, path, path.stat().st_size, spec.raw_sha256, "cached")
    return _fetch(spec, mirrors, job)


def _make_folder(data_dir: Path) -> Path:
    folder = mnist_dir(data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


MAX_RETRIES = 100  # per mirror and file: more only hammers a server that is down
MAX_TIMEOUT = 3600.0  # seconds; a socket timeout far beyond it overflows (1e10, inf)


def _check_settings(
    mirrors: Sequence[Mirror], timeout: float, retries: int, backoff: float
) -> None:
    """Raise ConfigError, its message beginning with the parameter's name, for the first
    unusable one of download_mnist's settings."""
    if not mirrors:
        raise ConfigError(
            "no MNIST mirrors to download from; give at least one in mirrors "
            "(an http(s) URL or a folder)",
            param="mirrors",
        )
    checks = (
        ("retries", retries, 0 <= retries <= MAX_RETRIES, f"0 to {MAX_RETRIES}"),
        ("backoff", backoff, 0 <= backoff <= MAX_TIMEOUT, f"0 to {MAX_TIMEOUT:g} seconds"),
        ("timeout", timeout, 0 < timeout <= MAX_TIMEOUT, f"in (0, {MAX_TIMEOUT:g}] seconds"),
    )
    for param, value, ok, wanted in checks:
        if not ok:  # (NaN fails every check)
            raise ConfigError(f"{param} must be {wanted}, got {value}", param=param)


def download_mnist(
    data_dir: Path,
    mirrors: Sequence[Mirror],
    *,
    force: bool = False,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 0.5,
    progress: DownloadProgress | None = None,
    session: requests.Session | None = None,
) -> DownloadReport:
    """Make sure the four verified MNIST files are in ``<data_dir>/mnist/``.

    Files already there that pass `verify_file` are kept ("cached") unless `force`.
    timeout: seconds for connecting and for each read. retries: further attempts on the
    same mirror after a transient failure (so at most 1 + retries per mirror); backoff:
    seconds before the first retry, doubled for each next one (at most
    MAX_BACKOFF_SECONDS of sleep per call). Each file has a deadline and a byte cap per
    mirror, all attempts together (`fcgrad.data.transfer.Budget`); the deadline holds
    from the answer's first byte with fcgrad's own session, while a `session` given is
    used as it is (its reads have the per-read timeout only). An interrupted transfer leaves a
    ``.NAME.*.part`` file that the next run resumes. Returns a DownloadReport.
    Raises ConfigError if `mirrors` is empty or retries/backoff/timeout are out of range
    (its `param` and the start of its message name which),
    DownloadError (one line, every URL tried and why) when every mirror fails for a file,
    DataError if the folder cannot be written (a full disk included).
    """
    _check_settings(mirrors, timeout, retries, backoff)
    folder = _make_folder(Path(data_dir))
    own_session = session is None
    job = Job(
        folder, session or watched_session(), timeout, progress or NoProgress(), retries, backoff
    )
    try:
        return DownloadReport([_ensure(spec, mirrors, job, force) for spec in MNIST_FILES])
    finally:
        if own_session:
            job.session.close()
