"""A fault-injecting HTTP server on 127.0.0.1 for the download tests.

`FaultyServer(folder)` serves the files of `folder` (the real MNIST) at ``/NAME`` with
HTTP/1.1 Range support (206 Partial Content with Content-Range, 416 past the end), and
answers the n-th GET of a file with the fault planned for it:

    with FaultyServer(shared_mnist) as server:
        server.plan("t10k-labels-idx1-ubyte.gz", status(503), reset(at=0.5))
        ...  # request 1 gets a 503, request 2 is reset half way, later ones are served

Faults: `status(code)` (403, 404, 500, 503, ...), `HTML` (200 with an HTML page),
`truncate(at)` (Content-Length of the whole body, a fraction `at` of it sent, then the
connection closed), `reset(at)` (the same, then a TCP reset), `stall(seconds, at)` (a
fraction `at` sent, then nothing for `seconds`), `redirect()` (302 to ``/moved/NAME``,
which serves the file and is never faulted), `wrong_file(other)` (200 with another file's
bytes), `IGNORE_RANGE` (200 with the whole file even to a Range request), and the
answers that never end before the body: `trickle_headers()`, `endless_continue()`, and
`bad_location()` (a redirect to a URL that cannot be parsed).

Every request is logged as a `Request`, with the body bytes actually handed to the
socket (`bytes_sent`). Nothing listens on anything but 127.0.0.1; stalls end when the
server closes, and the server thread is joined (bounded) on close.
"""

from __future__ import annotations

import gzip
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fcgrad.data.mirrors import Mirror, parse_mirror

SEND_CHUNK = 64 * 1024
NAMES = [  # the four files of MNIST, as the mirrors name them
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
MAX_STALL_SECONDS = 10.0
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Fault:
    """What to do to one request; build one with the helpers below."""

    kind: str
    status: int = 0
    at: float = 0.5
    seconds: float = 0.0
    other: str = ""

    def __str__(self) -> str:
        if self.kind == "status":
            return f"HTTP {self.status}"
        return self.kind


def status(code: int) -> Fault:
    """Answer with HTTP status `code` and a small HTML body."""
    return Fault("status", status=code)


HTML = Fault("html")
IGNORE_RANGE = Fault("ignore_range")


def truncate(at: float = 0.5) -> Fault:
    """Announce the whole body, send the fraction `at` of it, then close the connection."""
    return Fault("truncate", at=at)


def truncate_whole(at: float = 0.9) -> Fault:
    """As `truncate`, but always the whole file from byte 0 (200), even to a Range request:
    each attempt starts over, and is cut short again."""
    return Fault("truncate_whole", at=at)


def reset(at: float = 0.5) -> Fault:
    """Announce the whole body, send the fraction `at` of it, then reset the connection."""
    return Fault("reset", at=at)


def stall(seconds: float, at: float = 0.0) -> Fault:
    """Send the headers and the fraction `at` of the body, then nothing for `seconds`."""
    return Fault("stall", at=at, seconds=min(seconds, MAX_STALL_SECONDS))


def redirect() -> Fault:
    """302 to /moved/NAME on the same server (served normally)."""
    return Fault("redirect")


def trickle(every: float = 0.02) -> Fault:
    """200 with the right bytes, one every `every` seconds: each read returns before any
    read timeout, so only a total deadline can end it."""
    return Fault("trickle", seconds=every)


def gzip_encoded() -> Fault:
    """200 with the right .gz bytes, labelled `Content-Encoding: gzip` (as some servers do
    for .gz files, though asked for identity): a client must not decode them."""
    return Fault("gzip_encoded")


def trickle_headers(every: float = 0.02) -> Fault:
    """A status line, then a header trickled a byte every `every` seconds without end:
    each read returns before any read timeout, and the body never starts."""
    return Fault("trickle_headers", seconds=every)


def endless_continue(every: float = 0.01) -> Fault:
    """`100 Continue` interim answers, one every `every` seconds, without end: a client
    reads past each to the final answer, which never comes."""
    return Fault("endless_continue", seconds=every)


def bad_location() -> Fault:
    """302 to `http://[::1`, a URL that cannot be parsed."""
    return Fault("bad_location")


def endless() -> Fault:
    """200 with a gzip header whose file name never ends (no Content-Length): a hostile
    mirror's way to fill a disk. The server stops at ENDLESS_LIMIT bytes."""
    return Fault("endless")


def endless_members() -> Fault:
    """200 with empty gzip members, one after another, without end (no Content-Length):
    each is a valid gzip of nothing, so a decoder never finds an error in them. The
    server stops at ENDLESS_LIMIT bytes."""
    return Fault("endless_members")


ENDLESS_LIMIT = 64 * 2**20
EMPTY_MEMBER = gzip.compress(b"", mtime=0)  # 20 bytes: header, an empty block, trailer


def wrong_file(other: str) -> Fault:
    """200 with the bytes of the file `other` instead."""
    return Fault("wrong_file", other=other)


@dataclass
class Request:
    """One GET as the server saw it.

    number: the n-th GET of /NAME (1-based; 0 for /moved/ paths); range: the Range
    header or None; status: the status line sent (0 if none); bytes_sent: body bytes
    handed to the socket.
    """

    name: str
    path: str
    number: int
    range: str | None
    fault: Fault | None
    status: int = 0
    bytes_sent: int = 0

    @property
    def range_start(self) -> int | None:
        match = _RANGE.match(self.range or "")
        return int(match.group(1)) if match else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder = folder
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.plans: dict[str, tuple[list[Fault | None], Fault | None]] = {}
        self.counts: dict[str, int] = {}
        self.log: list[Request] = []
        self._cache: dict[str, bytes] = {}

    def content(self, name: str) -> bytes | None:
        with self.lock:
            if name not in self._cache:
                path = self.folder / name
                if "/" in name or not path.is_file():
                    return None
                self._cache[name] = path.read_bytes()
            return self._cache[name]

    def new_request(self, path: str, range_header: str | None) -> Request:
        with self.lock:
            if path.startswith("/moved/"):
                name, number, fault = path.removeprefix("/moved/"), 0, None
            else:
                name = path.removeprefix("/")
                number = self.counts.get(name, 0) + 1
                self.counts[name] = number
                faults, then = self.plans.get(name, ([], None))
                fault = faults[number - 1] if number <= len(faults) else then
            request = Request(name, path, number, range_header, fault)
            self.log.append(request)
            return request

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-body is part of the tests


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        request = self.server.new_request(urlsplit(self.path).path, self.headers.get("Range"))
        try:
            self._answer(request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _head(self, request: Request, code: int, headers: dict[str, str]) -> None:
        request.status = code
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        if request.fault is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _small(self, request: Request, code: int, body: bytes, **headers: str) -> None:
        headers = {"Content-Type": "text/html", "Content-Length": str(len(body)), **headers}
        self._head(request, code, headers)
        self._send(request, body)

    def _send(self, request: Request, body: bytes) -> None:
        for start in range(0, len(body), SEND_CHUNK):
            piece = body[start : start + SEND_CHUNK]
            self.wfile.write(piece)
            request.bytes_sent += len(piece)

    def _answer(self, request: Request) -> None:
        fault = request.fault
        kind = fault.kind if fault else ""
        if fault is not None and kind == "status":
            page = f"<html><body>{fault.status}</body></html>".encode()
            return self._small(request, fault.status, page)
        if kind == "html":
            page = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
            return self._small(request, 200, page)
        if kind == "redirect":
            return self._small(request, 302, b"", Location=f"/moved/{request.name}")
        if kind == "bad_location":
            return self._small(request, 302, b"", Location="http://[::1")
        if kind in ("trickle_headers", "endless_continue"):
            return self._no_answer(request, fault)
        if kind == "endless":
            return self._endless(request)
        if kind == "endless_members":
            return self._endless(request, members=True)
        data = self.server.content(fault.other if fault and kind == "wrong_file" else request.name)
        if data is None:
            return self._small(request, 404, b"<html><body>404</body></html>")
        self._file(request, data)

    def _file(self, request: Request, data: bytes) -> None:
        fault, total = request.fault, len(data)
        match = _RANGE.match(request.range or "")
        headers = {"Content-Type": "application/gzip", "Accept-Ranges": "bytes"}
        code, body = 200, data
        if match and (fault is None or fault.kind not in ("ignore_range", "truncate_whole")):
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            if start >= total or end < start:
                return self._small(request, 416, b"", **{"Content-Range": f"bytes */{total}"})
            code, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        headers["Content-Length"] = str(len(body))
        if fault is not None and fault.kind == "gzip_encoded":
            headers["Content-Encoding"] = "gzip"
        self._head(request, code, headers)
        if fault is not None and fault.kind == "trickle":
            for k in range(len(body)):
                if self.server.stopping.wait(fault.seconds):
                    break
                self._send(request, body[k : k + 1])
                self.wfile.flush()
            return None
        if fault is None or fault.kind not in ("truncate", "truncate_whole", "reset", "stall"):
            return self._send(request, body)
        self._send(request, body[: int(len(body) * fault.at)])
        self.wfile.flush()
        if fault.kind == "stall":
            self.server.stopping.wait(fault.seconds)
        elif fault.kind == "reset":
            self._drain()
            self._reset()
        self.close_connection = True

    def _endless(self, request: Request, members: bool = False) -> None:
        self._head(request, 200, {"Content-Type": "application/gzip"})
        self.close_connection = True
        if members:
            more = EMPTY_MEMBER * (SEND_CHUNK // len(EMPTY_MEMBER))
        else:
            self._send(request, b"\x1f\x8b\x08\x08" + bytes(6))  # FNAME set: a name follows
            more = b"x" * SEND_CHUNK  # ... and never ends
        while request.bytes_sent < ENDLESS_LIMIT:
            self._send(request, more)

    def _no_answer(self, request: Request, fault: Fault) -> None:
        """Bytes of headers without end (trickle_headers, endless_continue), until the
        server stops; the client must hang up."""
        self.close_connection = True
        if fault.kind == "trickle_headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            piece = b"x"
        else:
            piece = b"HTTP/1.1 100 Continue\r\n\r\n"
        while not self.server.stopping.wait(fault.seconds):
            self.wfile.write(piece)
            self.wfile.flush()
            request.bytes_sent += len(piece)

    def _reset(self) -> None:
        """Close with SO_LINGER 0, which sends a TCP RST (and no FIN first, unlike the
        normal end of a request, which shuts the socket down for writing before closing)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.wfile.close()
        self.rfile.close()
        self.connection.close()

    def _drain(self, limit: float = 2.0) -> None:
        """Wait (bounded) until the client has received what was sent, so that the reset
        cuts the body where the fault says and does not discard bytes still in flight."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and _unacked(self.connection) > 0:
            time.sleep(0.005)
        time.sleep(0.05)  # let the client read them before the reset arrives


def _unacked(sock: socket.socket) -> int:
    """Bytes in the socket's send queue (Linux SIOCOUTQ); 0 where unsupported."""
    try:
        import fcntl
        import termios

        buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, OSError, AttributeError):
        return 0
    return int(struct.unpack("i", buf)[0])


@dataclass
class FaultyServer:
    """The server; use as a context manager (it stops and joins its thread on exit)."""

    folder: Path
    _server: _Server = field(init=False, repr=False)
    _thread: threading.Thread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._server = _Server(Path(self.folder))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, "http://127.0.0.1:PORT/"."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def plan(self, name: str, *faults: Fault | None, then: Fault | None = None) -> None:
        """The n-th GET of /NAME meets faults[n-1] (None: served normally); later GETs
        meet `then` (default: served normally)."""
        with self._server.lock:
            self._server.plans[name] = (list(faults), then)

    def requests(self, name: str | None = None) -> list[Request]:
        """Every GET so far (of `name` only, /moved/ ones included, when given)."""
        with self._server.lock:
            return [r for r in self._server.log if name is None or r.name == name]

    def bytes_sent(self, name: str) -> int:
        """Body bytes the server sent for `name` over all its requests."""
        return sum(r.bytes_sent for r in self.requests(name))

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(folder: Path) -> Iterator[FaultyServer]:
    """Generator for a pytest fixture: yields a running FaultyServer, closes it after."""
    with FaultyServer(folder) as server:
        yield server


class Recorder:
    """A DownloadProgress that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self, name: str, total_bytes: int | None, source: str) -> None:
        self.calls.append(("start", (name, total_bytes, source)))

    def advance(self, n_bytes: int) -> None:
        self.calls.append(("advance", n_bytes))

    def end(self, ok: bool) -> None:
        self.calls.append(("end", ok))

    def attempts_of(self, name: str) -> list[tuple[Any, list[int], bool]]:
        """(start args, advances, ok) of each started attempt for `name`."""
        out: list[tuple[Any, list[int], bool]] = []
        current: tuple[Any, list[int]] | None = None
        for kind, arg in self.calls:
            if kind == "start":
                current = (arg, [])
            elif kind == "advance" and current is not None:
                current[1].append(arg)
            elif kind == "end" and current is not None:
                if current[0][0] == name:
                    out.append((current[0], current[1], arg))
                current = None
        return out


def http(server: FaultyServer) -> Mirror:
    """The server as a mirror, as `--mirror URL` gives it."""
    return parse_mirror(server.url)
