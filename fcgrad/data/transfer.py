"""One file from one mirror: the HTTP transfer, with its timeouts, retries and backoff.

An attempt streams the file (``Accept-Encoding: identity``: the ``.gz`` bytes as served)
into a PartFile through a Verifier, resuming kept bytes with ``Range: bytes=N-``, and
classifies what went wrong: a transient failure (HTTP 408, 425, 429, 500, 502, 503, 504,
a timeout, a connection reset or closed, a body cut short) is retried on the same mirror
after an exponential backoff, any other moves on to the next mirror. `timeout` is
seconds for connecting and for each read; a file's `Budget` bounds all of one mirror's
attempts together, from the first byte of each answer (`fcgrad.data.deadline`): a
deadline (`file_deadline`) and twice the bytes of its largest gzip (`max_gzip_bytes`).
MAX_BACKOFF_SECONDS bounds the sleep of one `download_mnist` call, all files together.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import requests

from fcgrad.data.deadline import deadline
from fcgrad.data.idx import CHUNK_BYTES
from fcgrad.data.mirrors import Mirror, MnistFile
from fcgrad.data.partfile import PartFile
from fcgrad.data.report import DownloadProgress
from fcgrad.data.verify import Rejected, Verifier, idx_reason
from fcgrad.errors import DataError, IDXError
from fcgrad.fileio import open_regular

HTTP_CHUNK_BYTES = 64 * 1024
"""Bytes per read from a server: what a broken-off transfer can lose beyond what was kept."""

MAX_BACKOFF_SECONDS = 5.0
"""Most seconds one `download_mnist` call sleeps between retries, all files together."""

TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying on the same mirror."""

_sleep = time.sleep  # the backoff's sleep (tests replace it)


@dataclass
class Job:
    """What one `download_mnist` call shares across its files: the destination folder,
    the HTTP session, `timeout` (seconds), `retries`, `backoff` (seconds) and the backoff
    budget left (seconds)."""

    folder: Path
    session: requests.Session
    timeout: float
    progress: DownloadProgress
    retries: int
    backoff: float
    backoff_left: float = MAX_BACKOFF_SECONDS
    silent: set[str] = field(default_factory=set)  # mirrors that timed out: not tried again

    def delay(self, retry: int) -> float | None:
        """Seconds to sleep before retry number `retry` (1, 2, ...); None when the
        backoff budget of this call is spent (then the next mirror is tried instead)."""
        if self.backoff_left <= 0:
            return None
        wanted: float = min(self.backoff * 2 ** (retry - 1), self.backoff_left)
        if self.backoff > 0:
            self.backoff_left -= wanted
        return wanted


class _Failure(Exception):
    """One failed attempt (internal): why, whether to retry this mirror, whether the bytes
    written so far must go."""

    def __init__(self, reason: str, *, transient: bool, discard: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.discard = discard


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
# The reasons of an attempt that no server answered: an "offline?" is worth asking then.
UNANSWERED = frozenset({"connection refused", "host not found", "timed out", "connection failed"})
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
    if isinstance(exc, (IDXError, Rejected)):
        reason = idx_reason(exc, source) if isinstance(exc, IDXError) else str(exc)
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


# ----------------------------------------------------------------------------- one attempt


MIN_RATE_BYTES = 64 * 1024  # per second: a transfer slower than this overall is given up


def file_deadline(spec: MnistFile, timeout: float) -> float:
    """Seconds one transfer of the file may take in all: ten read timeouts plus the file's
    most bytes at MIN_RATE_BYTES a second. `--timeout` is per read, so a mirror sending a
    byte every half second never trips it; this bounds the whole (12 s for a labels file
    at `--timeout 1`, 17 minutes for the training images at the default 30)."""
    return 10 * timeout + max_gzip_bytes(spec) / MIN_RATE_BYTES


def max_gzip_bytes(spec: MnistFile) -> int:
    """The most bytes a gzip of the file can take: its content stored uncompressed in
    deflate's stored blocks (5 bytes per 64 KB), plus a header and trailer of at most
    64 KB (RFC 1952's optional name and comment). Every transfer is capped there, so a
    mirror cannot fill the disk with a file that never ends."""
    return spec.raw_size + 5 * (spec.raw_size // 65535 + 1) + 65536


@dataclass
class Budget:
    """What one file may still cost from one mirror, all its attempts together: until
    `deadline` (time.monotonic, seconds) and `bytes_left` more bytes. The deadline and
    the cap were each attempt's, so `--retries` multiplied them (228 s, and 2.8 MB for a
    125 KB file's cap, in a helper's report on #13)."""

    deadline: float
    seconds: float  # the deadline, from the first attempt's start
    bytes_left: int

    @classmethod
    def for_file(cls, spec: MnistFile, timeout: float) -> Budget:
        """`file_deadline` seconds from now, and twice `max_gzip_bytes`: room for one
        transfer that breaks off and is sent again from its start."""
        seconds = file_deadline(spec, timeout)
        return cls(time.monotonic() + seconds, seconds, 2 * max_gzip_bytes(spec))


@dataclass
class _Body:
    offset: int  # where these bytes start in the file: 0, or the resume point
    total: int | None  # the whole file's size in bytes, if known
    url: str  # after redirects (a path for a local mirror)
    chunks: Iterator[bytes]


class _RangeNotSatisfiable(Exception):
    """The server answered 416 to our Range request (internal)."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)$")


def _raw_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body's bytes as sent: a server that adds `Content-Encoding: gzip` to a .gz file
    (though asked for identity) must not have it decoded, or the file is the IDX inside.
    Each chunk is what one read brought (urllib3's read1), so that a mirror trickling a
    byte at a time still hands bytes over and meets the file's deadline, instead of one
    read waiting for 64 KB. urllib3's errors become requests' own, as `iter_content`
    makes them."""
    from urllib3 import exceptions as u3

    raw = response.raw
    try:
        if not hasattr(raw, "read1"):  # urllib3 1.x
            yield from raw.stream(HTTP_CHUNK_BYTES, decode_content=False)
            return
        while chunk := raw.read1(HTTP_CHUNK_BYTES, decode_content=False):
            yield chunk
    except u3.ProtocolError as e:
        raise requests.exceptions.ChunkedEncodingError(e) from None
    except u3.ReadTimeoutError as e:
        raise requests.exceptions.ConnectionError(e) from None
    except u3.SSLError as e:
        raise requests.exceptions.SSLError(e) from None
    except u3.HTTPError as e:
        raise requests.exceptions.ConnectionError(e) from None


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
    return _Body(offset, total, response.url, _raw_chunks(response))


@contextlib.contextmanager
def _open_body(mirror: Mirror, name: str, offset: int, job: Job) -> Iterator[_Body]:
    """Open the file `name` on `mirror`, asking for the bytes from `offset` on; the _Body
    says where the bytes really start (0 when the server sends the whole file)."""
    source = mirror.url(name)
    if mirror.is_local:
        with _open_local(source) as f:
            size = os.fstat(f.fileno()).st_size
            start = offset if offset <= size else 0
            f.seek(start)
            yield _Body(start, size, source, iter(lambda: f.read(CHUNK_BYTES), b""))
        return
    headers = {"Accept-Encoding": "identity"}  # we want the .gz bytes, not a decoded body
    if offset:
        headers["Range"] = f"bytes={offset}-"
    timeout = (job.timeout, job.timeout)
    try:
        response = job.session.get(source, stream=True, timeout=timeout, headers=headers)
    except ValueError as e:  # requests' own parse of a redirect's Location ("http://[::1")
        if isinstance(e, requests.RequestException):
            raise
        raise _Failure(
            f"redirected to a malformed URL ({e})", transient=False, discard=False
        ) from None
    with response:
        if offset and response.status_code == 416:
            raise _RangeNotSatisfiable
        response.raise_for_status()
        if response.status_code == 206:
            yield _partial_body(response, offset)
        else:
            chunks = _raw_chunks(response)
            yield _Body(0, _content_length(response), response.url, chunks)


def _open_local(path: str) -> BinaryIO:
    """A local mirror's file, opened for reading; a _Failure for anything but a regular
    file (a FIFO hung the download)."""
    try:
        return open_regular(path, path)
    except DataError as e:
        raise _Failure(str(e), transient=False, discard=False) from None


_ATTEMPT_FAILURES = (requests.RequestException, OSError, IDXError, Rejected)


def _refeed(part: PartFile, spec: MnistFile, source: str) -> tuple[Verifier, int]:
    """A verifier fed the bytes already in `part`, and how many there are; bytes that
    cannot be the start of the file are dropped (then the transfer starts at 0)."""
    verifier = Verifier(spec, source, require_gzip=True)
    if part.size == 0:
        return verifier, 0
    try:
        for chunk in part.chunks():
            verifier.feed(chunk)
    except (IDXError, Rejected):
        part.reset()
        return Verifier(spec, source, require_gzip=True), 0
    return verifier, part.size


def _attempt(spec: MnistFile, mirror: Mirror, part: PartFile, job: Job, budget: Budget) -> str:
    """Fetch `spec` from `mirror` into `part`, verify it and rename it into place, within
    `budget` (whose deadline also bounds the wait for the headers: `deadline`).

    Returns the URL the bytes came from (after redirects); raises _Failure for a failed
    attempt, LocalError when our own file cannot be written.
    """
    with deadline(budget.deadline) as watch:
        try:
            return _transfer(spec, mirror, part, job, budget)
        except _Failure as failure:  # (when the watchdog cut it, whatever broke says so)
            if not watch.fired or failure.reason.startswith("too slow"):
                raise
        raise _Failure(
            f"too slow: no whole answer in {budget.seconds:.0f} s, the deadline for this file",
            transient=False,
            discard=True,
        )


def _transfer(spec: MnistFile, mirror: Mirror, part: PartFile, job: Job, budget: Budget) -> str:
    """_attempt's work, without the watchdog."""
    source = mirror.url(spec.name)
    verifier, offset = _refeed(part, spec, source)
    started = ok = resumed = False
    try:
        with _open_body(mirror, spec.name, offset, job) as body:
            if body.offset != offset:  # the server sent the whole file: start over
                part.reset()
                verifier = Verifier(spec, source, require_gzip=True)
            resumed = body.offset > 0
            job.progress.start(spec.name, body.total, body.url)
            started = True
            if body.offset:
                job.progress.advance(body.offset)
            cap, received = max_gzip_bytes(spec), body.offset
            for chunk in body.chunks:
                received += len(chunk)
                budget.bytes_left -= len(chunk)
                _check_budget(budget, received, cap)
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
        except (IDXError, Rejected) as exc:
            raise _classify(exc, source, resumed) from None
        part.commit(job.folder / spec.name)
        return source
    except _ATTEMPT_FAILURES as exc:
        raise _classify(exc, source, resumed) from None
    finally:
        if started:
            job.progress.end(ok)


def _check_budget(budget: Budget, received: int, cap: int) -> None:
    """A _Failure once the file's transfer from this mirror has gone past its deadline, its
    position in the file past any gzip of it (an endless gzip header or empty members),
    or all its attempts together past twice that."""
    if time.monotonic() > budget.deadline:
        raise _Failure(
            f"too slow: {received:,} bytes in {budget.seconds:.0f} s, the deadline for this file",
            transient=False,
            discard=True,
        )
    if received > cap:
        raise _Failure(
            f"sent more than {cap:,} bytes, more than any gzip of the file",
            transient=False,
            discard=True,
        )
    if budget.bytes_left < 0:
        raise _Failure(
            f"sent more than {2 * cap:,} bytes over its attempts, twice any gzip of the file",
            transient=False,
            discard=True,
        )


# ----------------------------------------------------------------------------- one mirror


def try_mirror(
    spec: MnistFile, mirror: Mirror, part: PartFile, job: Job, attempts: list[tuple[str, str]]
) -> str | None:
    """Up to 1 + job.retries attempts on `mirror`; the final URL on success, else None. A
    mirror that timed out or was too slow for one file is not tried for the next ones."""
    if str(mirror) in job.silent:
        return None
    budget = Budget.for_file(spec, job.timeout)
    for retry in range(job.retries + 1):
        if retry:
            delay = job.delay(retry)
            if delay is None or time.monotonic() + delay >= budget.deadline:
                break  # (the file's deadline is for all of this mirror's attempts)
            _sleep(delay)
        try:
            return _attempt(spec, mirror, part, job, budget)
        except _Failure as failure:
            attempts.append((mirror.url(spec.name), failure.reason))
            if failure.discard:
                part.reset()
            if not failure.transient:
                break
    last = attempts[-1][1] if attempts else ""
    if last == "timed out" or last.startswith("too slow"):  # it failed this file by silence
        job.silent.add(str(mirror))
    return None
