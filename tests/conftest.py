"""Shared fixtures: the real MNIST served over loopback HTTP, a downloaded copy, and a small
synthetic data set for the fast tier.

Nothing here touches the internet: every server binds 127.0.0.1 on a free port.

Tiers: a test that uses one of the MNIST fixtures (`MNIST_FIXTURES`) is marked `mnist`
here, and runs after every unmarked test; `pytest -m "not mnist"` is the fast tier.

Fixtures
- synthetic (session): a seeded MNIST-shaped set, 3,000 training and 500 valid rows.
- shared_mnist (session): Path of the read-only folder with the four MNIST .gz files.
- mnist_server (session): "http://127.0.0.1:PORT/" serving shared_mnist.
- serve_folder (function): factory, serve_folder(path) -> ServedFolder (url + request log).
- dead_mirror_url (function): an http URL on a loopback port nobody listens on.
- mnist_data_dir (session): a data dir whose mnist/ holds the verified files, downloaded
  once per session from mnist_server through download_mnist. Treat it as read-only.
- (autouse) each test starts with no stop signal on record in `fcgrad.interrupts`: one
  that a signal test's training took would name the next test's Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

from fcgrad import interrupts
from fcgrad.data import download_mnist, parse_mirror


@pytest.fixture(autouse=True)
def _no_stop_signal_on_record() -> Iterator[None]:
    interrupts.received = None
    yield
    interrupts.received = None


# Property tests draw the same examples in every run (a fixed derivation, no database): a
# failure reproduces, and CI never turns red on a draw no one can repeat.
settings.register_profile("fcgrad", derandomize=True, database=None)
settings.load_profile("fcgrad")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST_ENV = "FCGRAD_SHARED_MNIST"
MNIST_FIXTURES = {"shared_mnist", "mnist_server", "mnist_data_dir", "mnist_normalized"}
MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class _LoggingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.request_log: list[tuple[str, str]] = []
        self.log_lock = threading.Lock()


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files; records (method, path) of every request; logs nothing."""

    server: _LoggingServer

    def _record(self) -> None:
        with self.server.log_lock:
            self.server.request_log.append((self.command, self.path))

    def do_GET(self) -> None:
        self._record()
        super().do_GET()

    def do_HEAD(self) -> None:
        self._record()
        super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class ServedFolder:
    """A folder served over HTTP on loopback; `url` ends in '/'."""

    url: str
    folder: Path
    _server: _LoggingServer = field(repr=False)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far."""
        with self._server.log_lock:
            return list(self._server.request_log)

    def count(self, method: str = "GET", name: str | None = None) -> int:
        """Requests with `method`, optionally only those for the file `name`."""
        return sum(
            1
            for m, path in self.requests
            if m == method and (name is None or path.rsplit("/", 1)[-1] == name)
        )


@contextlib.contextmanager
def served(folder: Path) -> Iterator[ServedFolder]:
    """Serve `folder` on http://127.0.0.1:<free port>/ in a background thread."""
    server = _LoggingServer(partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield ServedFolder(f"http://127.0.0.1:{port}/", folder, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The read-only folder with the real MNIST (env FCGRAD_SHARED_MNIST, else
    <repo root>/../shared/data/mnist). Fails loudly if it or a file is missing."""
    env = os.environ.get(SHARED_MNIST_ENV, "").strip()
    folder = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "mnist"
    if not folder.is_dir():
        pytest.fail(f"shared MNIST folder {folder} does not exist (set {SHARED_MNIST_ENV})")
    missing = [name for name in MNIST_NAMES if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"shared MNIST folder {folder} lacks {', '.join(missing)}")
    return folder


@pytest.fixture(scope="session")
def mnist_server(shared_mnist: Path) -> Iterator[str]:
    """Base URL "http://127.0.0.1:PORT/" serving the shared MNIST folder."""
    with served(shared_mnist) as server:
        yield server.url


@pytest.fixture
def serve_folder() -> Iterator[Callable[[Path], ServedFolder]]:
    """Factory: serve_folder(path) -> ServedFolder; every server stops at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(served(Path(folder)))


@pytest.fixture
def dead_mirror_url() -> Iterator[str]:
    """A mirror URL whose connection is refused: a loopback port bound for the test's whole
    duration but never listened on, so no other server can be given it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture(scope="session")
def mnist_data_dir(mnist_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose mnist/ holds the four verified MNIST files, downloaded once per
    session from mnist_server. Read-only for tests: copy it before changing anything."""
    data_dir = tmp_path_factory.mktemp("mnist-data")
    download_mnist(data_dir, [parse_mirror(mnist_server)], timeout=10.0)
    return data_dir


@pytest.fixture(scope="session")
def mnist_normalized(mnist_data_dir: Path) -> tuple[Any, ...]:
    """(x_train, y_train, x_valid, y_valid) of the real MNIST, normalized with the training
    statistics (float32, (60000, 784) and (10000, 784)). Shared: do not modify."""
    from fcgrad.data import load_mnist
    from fcgrad.data.normalize import normalize_pair

    x_train, y_train, x_valid, y_valid = load_mnist(mnist_data_dir)
    x_train, x_valid, _, _ = normalize_pair(x_train, x_valid, inplace=True)
    return x_train, y_train, x_valid, y_valid


@pytest.fixture(scope="session")
def synthetic() -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_valid, y_valid): 3,000 and 500 MNIST-shaped rows, float32 (N, 784)
    and int64 labels 0..9. Each digit is a fixed random prototype (seed 20261201) plus noise,
    scaled to mean 0 and std 1 overall: learnable, tiny, and the same in every run."""
    rng = np.random.default_rng(20261201)
    prototypes = rng.standard_normal((10, 784))
    labels = rng.integers(0, 10, 3500)
    x = prototypes[labels] + 2.0 * rng.standard_normal((3500, 784))
    x = ((x - x.mean()) / x.std()).astype(np.float32)
    return x[:3000], labels[:3000], x[3000:], labels[3000:]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that reads the real MNIST `mnist`, and run those after the fast tier."""
    for item in items:
        if MNIST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mnist)
    items.sort(key=lambda item: item.get_closest_marker("mnist") is not None)  # stable
