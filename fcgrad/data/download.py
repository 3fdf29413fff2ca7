"""Download and verify the four MNIST files into ``<data_dir>/mnist/``.

Each file is tried on each mirror in order; any failure (connection, timeout, HTTP
status, a body that is not gzip, wrong IDX header, wrong uncompressed size or SHA-256)
moves on to the next mirror. A file is verified by its *uncompressed* IDX content, so
the official ``.gz`` files and recompressed copies both pass. Bytes go to a temp file
in the same folder, which is fsynced, verified and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import requests

from fcgrad.data.idx import CHUNK_BYTES, IDXStream
from fcgrad.data.mirrors import MNIST_FILES, Mirror, MnistFile
from fcgrad.data.mnist import mnist_dir
from fcgrad.errors import ConfigError, DataError, DownloadError, IDXError
from fcgrad.fileio import make_temp


class DownloadProgress(Protocol):
    """Receives progress of each download attempt (the core never draws anything).

    `start` is called once a mirror answers with a body (total_bytes: compressed size
    in bytes, None if unknown; source: the URL or path), `advance` with each chunk's
    size in bytes, and `end` exactly once after each started attempt.
    """

    def start(self, name: str, total_bytes: int | None, source: str) -> None: ...

    def advance(self, n_bytes: int) -> None: ...

    def end(self, ok: bool) -> None: ...


@dataclass
class FileResult:
    """The outcome for one file.

    size_bytes: size of the (compressed) file on disk; status: "downloaded" or "cached";
    mirror: the URL/path it came from (None when cached);
    attempts: (url, reason) of each failed attempt before the one that worked.
    """

    name: str
    path: Path
    size_bytes: int
    raw_sha256: str
    status: Literal["downloaded", "cached"]
    mirror: str | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (path as a string, attempts as {url, reason} objects)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "raw_sha256": self.raw_sha256,
            "status": self.status,
            "mirror": self.mirror,
            "attempts": [{"url": url, "reason": reason} for url, reason in self.attempts],
        }


@dataclass
class DownloadReport:
    """One FileResult per MNIST file, in MNIST_FILES order."""

    rows: list[FileResult]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"rows": [...]}``."""
        return {"rows": [row.to_dict() for row in self.rows]}


class _Rejected(Exception):
    """The bytes are well-formed IDX but not the file we want (internal)."""


class _NoProgress:
    def start(self, name: str, total_bytes: int | None, source: str) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        pass

    def end(self, ok: bool) -> None:
        pass


class _Verifier:
    """Checks a file's bytes against its MnistFile spec while they stream in."""

    def __init__(self, spec: MnistFile, source: str, *, require_gzip: bool) -> None:
        self._spec = spec
        self._stream = IDXStream(source, keep=False, hash_raw=True, require_gzip=require_gzip)
        self._header_ok = False

    def feed(self, chunk: bytes) -> None:
        self._stream.feed(chunk)
        header = self._stream.header
        if header is None or self._header_ok:
            return
        if header.dtype.name != self._spec.dtype or header.shape != self._spec.shape:
            raise _Rejected(
                f"IDX header says {header.dtype.name} {header.shape}, "
                f"expected {self._spec.dtype} {self._spec.shape}"
            )
        self._header_ok = True

    def finish(self) -> str:
        """Returns the raw SHA-256; raises IDXError or _Rejected on a mismatch."""
        self._stream.finish()
        size, digest = self._stream.raw_size, self._stream.raw_sha256()
        if size != self._spec.raw_size:
            raise _Rejected(f"uncompressed size {size} bytes, expected {self._spec.raw_size}")
        if digest != self._spec.raw_sha256:
            raise _Rejected(f"SHA-256 mismatch (got {digest[:12]}...)")
        return digest


def _idx_reason(exc: IDXError, source: str) -> str:
    return str(exc).removeprefix(f"{source}: ")


def verify_file(path: str | os.PathLike[str], spec: MnistFile) -> str | None:
    """Check a file on disk (gzip or raw IDX) against `spec`: IDX header dtype/shape,
    uncompressed size (bytes) and SHA-256. Returns None when it matches, else a short
    reason. Never raises for a bad or unreadable file."""
    source = str(path)
    verifier = _Verifier(spec, source, require_gzip=False)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                verifier.feed(chunk)
        verifier.finish()
    except OSError as exc:
        return str(exc.strerror or exc)
    except IDXError as exc:
        return _idx_reason(exc, source)
    except _Rejected as exc:
        return str(exc)
    return None


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    known = [
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("NameResolution", "host not found"),
        ("Name or service not known", "host not found"),
        ("reset", "connection reset"),
    ]
    for needle, reason in known:
        if needle in text:
            return reason
    return "connection failed"


def _failure_reason(exc: Exception, source: str) -> str:
    """A short reason for a failed attempt."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken during transfer"
    if isinstance(exc, requests.ConnectionError):
        return _connection_reason(exc)
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__})"
    if isinstance(exc, IDXError):
        return _idx_reason(exc, source)
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


@contextlib.contextmanager
def _open_body(
    mirror: Mirror, name: str, session: requests.Session, timeout: float
) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """Yield (compressed size in bytes or None, iterator of ~1 MiB chunks)."""
    if mirror.is_local:
        with open(mirror.url(name), "rb") as f:
            yield os.fstat(f.fileno()).st_size, iter(lambda: f.read(CHUNK_BYTES), b"")
        return
    headers = {"Accept-Encoding": "identity"}  # we want the .gz bytes, not a decoded body
    with session.get(
        mirror.url(name), stream=True, timeout=(timeout, timeout), headers=headers
    ) as response:
        response.raise_for_status()
        yield _content_length(response), response.iter_content(CHUNK_BYTES)


@dataclass
class _Job:
    folder: Path
    session: requests.Session
    timeout: float
    progress: DownloadProgress


_ATTEMPT_FAILURES = (requests.RequestException, OSError, IDXError, _Rejected)


def _stream_to(
    out: Any, chunks: Iterator[bytes], verifier: _Verifier, progress: DownloadProgress
) -> None:
    for chunk in chunks:
        out.write(chunk)
        verifier.feed(chunk)
        progress.advance(len(chunk))
    out.flush()
    os.fsync(out.fileno())


def _try_mirror(spec: MnistFile, mirror: Mirror, job: _Job) -> str | None:
    """Download `spec` from `mirror` into place; None on success, else the reason."""
    url = mirror.url(spec.name)
    fd, tmp = make_temp(job.folder, spec.name)
    ok = started = False
    try:
        body = _open_body(mirror, spec.name, job.session, job.timeout)
        with os.fdopen(fd, "wb") as out, body as (total, chunks):
            job.progress.start(spec.name, total, url)
            started = True
            verifier = _Verifier(spec, url, require_gzip=True)
            _stream_to(out, chunks, verifier, job.progress)
        verifier.finish()
        os.replace(tmp, job.folder / spec.name)
        ok = True
        return None
    except _ATTEMPT_FAILURES as exc:
        return _failure_reason(exc, url)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if started:
            job.progress.end(ok)


def _fetch(spec: MnistFile, mirrors: Sequence[Mirror], job: _Job) -> FileResult:
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        reason = _try_mirror(spec, mirror, job)
        if reason is None:
            path = job.folder / spec.name
            size = path.stat().st_size
            url = mirror.url(spec.name)
            return FileResult(spec.name, path, size, spec.raw_sha256, "downloaded", url, attempts)
        attempts.append((mirror.url(spec.name), reason))
    tried = "; ".join(f"{url} ({reason})" for url, reason in attempts)
    raise DownloadError(f"could not download {spec.name}: {tried}")


def _ensure(spec: MnistFile, mirrors: Sequence[Mirror], job: _Job, force: bool) -> FileResult:
    path = job.folder / spec.name
    if path.exists() and not path.is_file():  # a local problem: no mirror can fix it
        raise DataError(f"{path} exists but is not a regular file; move it away and run again")
    if not force and path.is_file() and verify_file(path, spec) is None:
        return FileResult(spec.name, path, path.stat().st_size, spec.raw_sha256, "cached")
    return _fetch(spec, mirrors, job)


def _make_folder(data_dir: Path) -> Path:
    folder = mnist_dir(data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


def download_mnist(
    data_dir: Path,
    mirrors: Sequence[Mirror],
    *,
    force: bool = False,
    timeout: float = 30.0,
    progress: DownloadProgress | None = None,
    session: requests.Session | None = None,
) -> DownloadReport:
    """Make sure the four verified MNIST files are in ``<data_dir>/mnist/``.

    Files already there that pass `verify_file` are kept ("cached") unless `force`.
    timeout: seconds for connecting and for each read. Returns a DownloadReport.
    Raises ConfigError if `mirrors` is empty, DownloadError (one line, every URL tried
    and why) when every mirror fails for a file, DataError if the folder is unwritable.
    """
    if not mirrors:
        raise ConfigError("no MNIST mirrors to download from; give one with --mirror URL_OR_FOLDER")
    folder = _make_folder(Path(data_dir))
    own_session = session is None
    job = _Job(folder, session or requests.Session(), timeout, progress or _NoProgress())
    try:
        return DownloadReport([_ensure(spec, mirrors, job, force) for spec in MNIST_FILES])
    finally:
        if own_session:
            job.session.close()
