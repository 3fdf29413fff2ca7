"""A total deadline for an HTTP exchange, its headers included.

requests' `timeout` is per socket read: a server that trickles its status line and
headers a byte at a time, or answers ``100 Continue`` without end, never trips it, and
the body's own deadline (`fcgrad.data.transfer.file_deadline`) only starts once the
headers are in (issue #13's second attack). So the session fcgrad downloads with
(`watched_session`) registers every connection a request takes from its pool, and
`deadline(at)` runs a watchdog thread that, from time `at` on, shuts those connections'
sockets down: the read blocked in them returns, the request fails, and `Watch.fired`
tells the caller that the deadline, not the server, ended it.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

REPEAT_SECONDS = 0.1  # after the deadline, how often the watchdog shuts down again
# (a connection still being made when it first fired is shut down once it is made)


class Watch:
    """The connections of one exchange, and whether its deadline has passed (`fired`)."""

    def __init__(self) -> None:
        self.fired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def add(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)

    def shut_down(self) -> None:
        """Mark the deadline passed and shut down every socket taken so far."""
        with self._lock:
            self.fired = True
            for connection in self._connections:
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


_current: contextvars.ContextVar[Watch | None] = contextvars.ContextVar("watch", default=None)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[Watch]:
    """Within: the connections this thread's watched requests take are shut down from
    time `at` (time.monotonic, seconds) on, until the block ends."""
    watch, done = Watch(), threading.Event()

    def watchdog() -> None:
        if done.wait(max(0.0, at - time.monotonic())):
            return
        watch.shut_down()
        while not done.wait(REPEAT_SECONDS):
            watch.shut_down()

    thread = threading.Thread(target=watchdog, name="fcgrad-deadline", daemon=True)
    token = _current.set(watch)
    thread.start()
    try:
        yield watch
    finally:
        done.set()
        _current.reset(token)
        thread.join()


def _registering(pool: type[Any]) -> type[Any]:
    """`pool` whose connections, as each request takes one, join the current Watch."""

    class Registering(pool):  # type: ignore[misc]
        def _get_conn(self, timeout: float | None = None) -> Any:
            connection = super()._get_conn(timeout)
            watch = _current.get()
            if watch is not None:
                watch.add(connection)
            return connection

    Registering.__name__ = f"Registering{pool.__name__}"
    return Registering


_POOLS = {"http": _registering(HTTPConnectionPool), "https": _registering(HTTPSConnectionPool)}


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)


def watched_session() -> requests.Session:
    """A requests Session whose http(s) requests `deadline` can cut short."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _WatchedAdapter())
    return session
