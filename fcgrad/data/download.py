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
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import requests

from fcgrad.data.idx import CHUNK_BYTES, IDXStream
from fcgrad.data.mirrors import MNIST_FILES, Mirror, MnistFile
from fcgrad.data.mnist import mnist_dir
from fcgrad.errors import ConfigError, DataError, DownloadError, FcgradError, IDXError
from fcgrad.fileio import make_temp

HTTP_CHUNK_BYTES = 64 * 1024
"""Bytes per read from a server: what a broken-off transfer can lose beyond what was kept."""

MAX_BACKOFF_SECONDS = 5.0
"""Most seconds one `download_mnist` call sleeps between retries, all files together."""

TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying on the same mirror."""

_sleep = time.sleep  # the backoff's sleep (tests replace it)


class DownloadProgress(Protocol):
    """Receives progress of each download attempt (the core never draws anything).

    `start` is called once a mirror answers with a body (total_bytes: the whole file's
    compressed size in bytes, None if unknown; source: the URL after redirects, or the
    path), `advance` with each chunk's size in bytes -- a resumed transfer first advances
    by the bytes already on disk -- and `end` exactly once after each started attempt.
    """

    def start(self, name: str, total_bytes: int | None, source: str) -> None: ...

    def advance(self, n_bytes: int) -> None: ...

    def end(self, ok: bool) -> None: ...


@dataclass
class FileResult:
    """The outcome for one file.

    size_bytes: size of the (compressed) file on disk; status: "downloaded" or "cached";
    mirror: the URL/path asked for (None when cached); url: where the bytes came from
    after redirects (== mirror unless redirected; None when cached);
    attempts: (url, reason) of each failed attempt before the one that worked, one per
    try (a retried mirror appears once per try).
    """

    name: str
    path: Path
    size_bytes: int
    raw_sha256: str
    status: Literal["downloaded", "cached"]
    mirror: str | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (path as a string, attempts as {url, reason} objects)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "raw_sha256": self.raw_sha256,
            "status": self.status,
            "mirror": self.mirror,
            "url": self.url,
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


class _Failure(Exception):
    """One failed attempt (internal): why, whether to retry this mirror, whether the bytes
    written so far must go."""

    def __init__(self, reason: str, *, transient: bool, discard: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.discard = discard


class _LocalError(Exception):
    """Writing or reading our own temp file failed (internal): no mirror can fix that."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc

    def data_error(self, folder: Path, name: str) -> DataError:
        if self.exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DataError(
                f"no space left on the disk holding {folder} (while writing {name}); "
                "free some space there and run again"
            )
        return DataError(f"cannot write {name} in {folder}: {self.exc.strerror or self.exc}")


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

    @property
    def complete(self) -> bool:
        """True when every byte of the file has been fed (`finish` may still reject it)."""
        return self._stream.complete

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


# ----------------------------------------------------------------------------- reasons

_CONNECTION_REASONS = [  # (text in the exception, reason, transient)
    ("refused", "connection refused", False),
    ("timed out", "timed out", True),
    ("NameResolution", "host not found", False),
    ("Name or service not known", "host not found", False),
    ("reset", "connection reset", True),
    ("RemoteDisconnected", "connection closed without a response", True),
    ("aborted", "connection aborted", True),
]
_INCOMPLETE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")


def _connection_reason(exc: requests.ConnectionError) -> tuple[str, bool]:
    text = str(exc)
    for needle, reason, transient in _CONNECTION_REASONS:
        if needle in text:
            return reason, transient
    return "connection failed", False


def _broken_reason(exc: requests.exceptions.ChunkedEncodingError) -> str:
    text = str(exc)
    match = _INCOMPLETE.search(text)
    if match:
        got, more = match.groups()
        return f"body cut short ({got} bytes received, {more} more announced)"
    if "reset" in text:
        return "connection reset during transfer"
    return "connection broken during transfer"


def _classify(exc: Exception, source: str, resumed: bool) -> _Failure:
    """The _Failure for an exception raised by one attempt."""
    if isinstance(exc, (IDXError, _Rejected)):
        reason = _idx_reason(exc, source) if isinstance(exc, IDXError) else str(exc)
        if resumed:  # the kept bytes may be another mirror's compression: start over
            return _Failure(f"{reason} after resuming", transient=True, discard=True)
        return _Failure(reason, transient=False, discard=True)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        return _Failure(f"HTTP {code}", transient=code in TRANSIENT_HTTP_STATUS, discard=False)
    if isinstance(exc, requests.Timeout):
        return _Failure("timed out", transient=True, discard=False)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _Failure(_broken_reason(exc), transient=True, discard=False)
    if isinstance(exc, requests.ConnectionError):
        reason, transient = _connection_reason(exc)
        return _Failure(reason, transient=transient, discard=False)
    if isinstance(exc, requests.RequestException):
        return _Failure(f"request failed ({type(exc).__name__})", transient=False, discard=False)
    if isinstance(exc, OSError):  # reading a local mirror
        return _Failure(str(exc.strerror or exc), transient=False, discard=False)
    return _Failure(str(exc), transient=False, discard=False)


# ----------------------------------------------------------------------------- the temp file


def _write_bytes(out: BinaryIO, data: bytes) -> None:
    """Append `data` to the temp file (the one place bytes are written; tests replace it)."""
    out.write(data)


def _lock(fd: int, path: Path) -> bool:
    """Take an exclusive, non-blocking lock on `fd`; False if another run holds it or
    `path` no longer names that file (it was removed or replaced meanwhile)."""
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino) and stat.S_ISREG(mine.st_mode)


def _part_files(folder: Path, name: str) -> list[Path]:
    """The ``.NAME.*.part`` files in `folder` (left by an interrupted run)."""
    prefix = f".{name}."
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if n.startswith(prefix) and n.endswith(".part"))


def _open_locked(path: Path) -> int | None:
    """An fd on the part file `path`, locked; None if it is in use or gone."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    if _lock(fd, path):
        return fd
    os.close(fd)
    return None


def _remove_locked(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)


def _remove_stale_parts(folder: Path, name: str) -> None:
    """Remove the ``.NAME.*.part`` files of `name` in `folder` that no run is using."""
    for path in _part_files(folder, name):
        fd = _open_locked(path)
        if fd is not None:
            _remove_locked(fd, path)


class _Part:
    """The temp file a download writes to, held open and locked while in use."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.file: BinaryIO = os.fdopen(fd, "r+b")
        self.file.seek(0, os.SEEK_END)
        self.closed = False

    @classmethod
    def claim(cls, folder: Path, name: str) -> _Part:
        """Reuse the largest unused ``.NAME.*.part`` (removing the other unused ones),
        or create a new one."""
        best: tuple[int, Path, int] | None = None
        for path in _part_files(folder, name):
            fd = _open_locked(path)
            if fd is None:
                continue
            size = os.fstat(fd).st_size
            if best is not None and best[2] >= size:
                _remove_locked(fd, path)
                continue
            if best is not None:
                _remove_locked(best[0], best[1])
            best = (fd, path, size)
        if best is not None:
            return cls(best[1], best[0])
        for _ in range(5):  # bounded: another run could lock our brand-new file first
            try:
                fd, path = make_temp(folder, name)
            except FcgradError as exc:
                raise DataError(str(exc)) from None
            if _lock(fd, path):
                return cls(path, fd)
            os.close(fd)
        raise DataError(f"cannot lock a temporary file in {folder}")

    @property
    def size(self) -> int:
        return self.file.tell()

    def chunks(self) -> Iterator[bytes]:
        """The bytes already in the file, from the start (leaves the position at the end)."""
        try:
            self.file.seek(0)
            yield from iter(lambda: self.file.read(CHUNK_BYTES), b"")
        except OSError as exc:
            raise _LocalError(exc) from None

    def write(self, data: bytes) -> None:
        try:
            _write_bytes(self.file, data)
        except OSError as exc:
            raise _LocalError(exc) from None

    def reset(self) -> None:
        """Drop every byte: the next transfer starts at 0."""
        try:
            self.file.seek(0)
            self.file.truncate()
        except OSError as exc:
            raise _LocalError(exc) from None

    def commit(self, final: Path) -> None:
        """fsync, rename to `final` and close."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            os.replace(self.path, final)
        except OSError as exc:
            raise _LocalError(exc) from None
        self.closed = True
        with contextlib.suppress(OSError):
            self.file.close()

    def close(self, keep: bool) -> None:
        """Close; keep the file (for a later resume) only if asked and it holds bytes."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            keep = keep and self.size > 0
            if not keep:
                self.path.unlink()
        with contextlib.suppress(OSError):
            self.file.close()


# ----------------------------------------------------------------------------- one attempt


@dataclass
class _Body:
    offset: int  # where these bytes start in the file: 0, or the resume point
    total: int | None  # the whole file's size in bytes, if known
    url: str  # after redirects (a path for a local mirror)
    chunks: Iterator[bytes]


class _RangeNotSatisfiable(Exception):
    """The server answered 416 to our Range request (internal)."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)$")


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _partial_body(response: requests.Response, offset: int) -> _Body:
    value = response.headers.get("Content-Range", "").strip()
    match = _CONTENT_RANGE.match(value)
    if not match or int(match.group(1)) != offset:
        raise _Failure(
            f"answered a resume from byte {offset} with Content-Range {value!r}",
            transient=False,
            discard=False,
        )
    total = int(match.group(3)) if match.group(3).isdigit() else None
    return _Body(offset, total, response.url, response.iter_content(HTTP_CHUNK_BYTES))


@contextlib.contextmanager
def _open_body(mirror: Mirror, name: str, offset: int, job: _Job) -> Iterator[_Body]:
    """Open the file `name` on `mirror`, asking for the bytes from `offset` on; the _Body
    says where the bytes really start (0 when the server sends the whole file)."""
    source = mirror.url(name)
    if mirror.is_local:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = offset if offset <= size else 0
            f.seek(start)
            yield _Body(start, size, source, iter(lambda: f.read(CHUNK_BYTES), b""))
        return
    headers = {"Accept-Encoding": "identity"}  # we want the .gz bytes, not a decoded body
    if offset:
        headers["Range"] = f"bytes={offset}-"
    timeout = (job.timeout, job.timeout)
    with job.session.get(source, stream=True, timeout=timeout, headers=headers) as response:
        if offset and response.status_code == 416:
            raise _RangeNotSatisfiable
        response.raise_for_status()
        if response.status_code == 206:
            yield _partial_body(response, offset)
        else:
            chunks = response.iter_content(HTTP_CHUNK_BYTES)
            yield _Body(0, _content_length(response), response.url, chunks)


@dataclass
class _Job:
    folder: Path
    session: requests.Session
    timeout: float
    progress: DownloadProgress
    retries: int
    backoff: float
    backoff_left: float = MAX_BACKOFF_SECONDS

    def delay(self, retry: int) -> float | None:
        """Seconds to sleep before retry number `retry` (1, 2, ...); None when the
        backoff budget of this call is spent (then the next mirror is tried instead)."""
        if self.backoff_left <= 0:
            return None
        wanted: float = min(self.backoff * 2 ** (retry - 1), self.backoff_left)
        if self.backoff > 0:
            self.backoff_left -= wanted
        return wanted


_ATTEMPT_FAILURES = (requests.RequestException, OSError, IDXError, _Rejected)


def _refeed(part: _Part, spec: MnistFile, source: str) -> tuple[_Verifier, int]:
    """A verifier fed the bytes already in `part`, and how many there are; bytes that
    cannot be the start of the file are dropped (then the transfer starts at 0)."""
    verifier = _Verifier(spec, source, require_gzip=True)
    if part.size == 0:
        return verifier, 0
    try:
        for chunk in part.chunks():
            verifier.feed(chunk)
    except (IDXError, _Rejected):
        part.reset()
        return _Verifier(spec, source, require_gzip=True), 0
    return verifier, part.size


def _attempt(spec: MnistFile, mirror: Mirror, part: _Part, job: _Job) -> str:
    """Fetch `spec` from `mirror` into `part`, verify it and rename it into place.

    Returns the URL the bytes came from (after redirects); raises _Failure for a failed
    attempt, _LocalError when our own file cannot be written.
    """
    source = mirror.url(spec.name)
    verifier, offset = _refeed(part, spec, source)
    started = ok = resumed = False
    try:
        with _open_body(mirror, spec.name, offset, job) as body:
            if body.offset != offset:  # the server sent the whole file: start over
                part.reset()
                verifier = _Verifier(spec, source, require_gzip=True)
            resumed = body.offset > 0
            job.progress.start(spec.name, body.total, body.url)
            started = True
            if body.offset:
                job.progress.advance(body.offset)
            for chunk in body.chunks:
                part.write(chunk)
                verifier.feed(chunk)
                job.progress.advance(len(chunk))
        verifier.finish()
        part.commit(job.folder / spec.name)
        ok = True
        return body.url
    except _RangeNotSatisfiable:
        if not verifier.complete:
            raise _Failure(
                f"HTTP 416 (cannot resume at byte {offset})", transient=True, discard=True
            ) from None
        resumed = True  # every byte was already here, from an earlier transfer
        try:
            verifier.finish()
        except (IDXError, _Rejected) as exc:
            raise _classify(exc, source, resumed) from None
        part.commit(job.folder / spec.name)
        return source
    except _ATTEMPT_FAILURES as exc:
        raise _classify(exc, source, resumed) from None
    finally:
        if started:
            job.progress.end(ok)


# ----------------------------------------------------------------------------- per file


def _try_mirror(
    spec: MnistFile, mirror: Mirror, part: _Part, job: _Job, attempts: list[tuple[str, str]]
) -> str | None:
    """Up to 1 + job.retries attempts on `mirror`; the final URL on success, else None."""
    for retry in range(job.retries + 1):
        if retry:
            delay = job.delay(retry)
            if delay is None:
                return None
            _sleep(delay)
        try:
            return _attempt(spec, mirror, part, job)
        except _Failure as failure:
            attempts.append((mirror.url(spec.name), failure.reason))
            if failure.discard:
                part.reset()
            if not failure.transient:
                return None
    return None


def _fetch(spec: MnistFile, mirrors: Sequence[Mirror], job: _Job) -> FileResult:
    attempts: list[tuple[str, str]] = []
    part = _Part.claim(job.folder, spec.name)
    keep = True  # an interrupted or failed transfer keeps its bytes for the next run
    try:
        for mirror in mirrors:
            url = _try_mirror(spec, mirror, part, job, attempts)
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
    except _LocalError as exc:
        keep = False  # a full disk gets its space back
        raise exc.data_error(job.folder, spec.name) from None
    finally:
        part.close(keep)
    tried = "; ".join(f"{url} ({reason})" for url, reason in attempts)
    raise DownloadError(
        f"could not download {spec.name}: {tried}; offline, give a folder or a reachable "
        "URL holding the four files with --mirror"
    )


def _ensure(spec: MnistFile, mirrors: Sequence[Mirror], job: _Job, force: bool) -> FileResult:
    path = job.folder / spec.name
    if path.exists() and not path.is_file():  # a local problem: no mirror can fix it
        raise DataError(f"{path} exists but is not a regular file; move it away and run again")
    if not force and path.is_file() and verify_file(path, spec) is None:
        _remove_stale_parts(job.folder, spec.name)
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
    MAX_BACKOFF_SECONDS of sleep per call). An interrupted transfer leaves a
    ``.NAME.*.part`` file that the next run resumes. Returns a DownloadReport.
    Raises ConfigError if `mirrors` is empty or retries/backoff/timeout are out of range,
    DownloadError (one line, every URL tried and why) when every mirror fails for a file,
    DataError if the folder cannot be written (a full disk included).
    """
    if not mirrors:
        raise ConfigError("no MNIST mirrors to download from; give one with --mirror URL_OR_FOLDER")
    checks = (
        ("--retries", retries, retries >= 0, "0 or more"),
        ("--backoff", backoff, backoff >= 0, "0 or more seconds"),
        ("--timeout", timeout, timeout > 0, "above 0 seconds"),
    )
    for flag, value, ok, wanted in checks:
        if not ok:  # (NaN fails every check)
            raise ConfigError(f"{flag} must be {wanted}, got {value}")
    folder = _make_folder(Path(data_dir))
    own_session = session is None
    job = _Job(
        folder, session or requests.Session(), timeout, progress or _NoProgress(), retries, backoff
    )
    try:
        return DownloadReport([_ensure(spec, mirrors, job, force) for spec in MNIST_FILES])
    finally:
        if own_session:
            job.session.close()
