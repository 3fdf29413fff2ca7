"""download_mnist against loopback HTTP servers and local folders (never the internet)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fcgrad.data import (
    MNIST_FILES,
    DownloadReport,
    Mirror,
    download_mnist,
    mnist_file,
    parse_mirror,
    verify_file,
)
from fcgrad.data.download import tried_text
from fcgrad.errors import ConfigError, DataError, DownloadError
from tests.data.faulty_server import Recorder

Serve = Callable[[Path], Any]  # conftest.serve_folder -> ServedFolder

# Raw (uncompressed) sizes and SHA-256 from ../shared/data/mnist/README.md.
README = {
    "train-images-idx3-ubyte.gz": (
        47040016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels-idx1-ubyte.gz": (
        60008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "t10k-images-idx3-ubyte.gz": (
        7840016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        10008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
NAMES = list(README)
TRAIN_IMAGES, TRAIN_LABELS, T10K_IMAGES, T10K_LABELS = NAMES


def raw_digest(path: Path) -> tuple[int, str]:
    raw = gzip.decompress(path.read_bytes())
    return len(raw), hashlib.sha256(raw).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Hidden files other than load_mnist's stamp of verified files: temp files."""
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".verified.json"
    )


def http(url: str) -> Mirror:
    return parse_mirror(url)


@pytest.fixture
def mnist_copy(mnist_data_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's downloaded data dir (safe to modify)."""
    data_dir = tmp_path / "data"
    shutil.copytree(mnist_data_dir, data_dir)
    return data_dir


@pytest.fixture
def silent_mirror_url() -> Iterator[str]:
    """A loopback port that accepts connections but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def bad_folders(tmp_path: Path, shared_mnist: Path) -> dict[str, Path]:
    """Folders that serve wrong things under the MNIST names."""
    empty = tmp_path / "empty"
    html = tmp_path / "html"
    wrong = tmp_path / "wrong"
    cut = tmp_path / "cut"
    for folder in (empty, html, wrong, cut):
        folder.mkdir()
    for name in NAMES:
        (html / name).write_text("<!DOCTYPE html><html><body>Moved</body></html>")
        data = (shared_mnist / name).read_bytes()
        (cut / name).write_bytes(data[: len(data) // 2])
    # train-images that is really t10k-images; train-labels with one label changed.
    shutil.copy(shared_mnist / T10K_IMAGES, wrong / TRAIN_IMAGES)
    labels = bytearray(gzip.decompress((shared_mnist / TRAIN_LABELS).read_bytes()))
    labels[8] = (labels[8] + 1) % 10
    (wrong / TRAIN_LABELS).write_bytes(gzip.compress(bytes(labels)))
    return {"empty": empty, "html": html, "wrong": wrong, "cut": cut}


def assert_all_verified(report: DownloadReport, folder: Path) -> None:
    assert [row.name for row in report.rows] == NAMES
    for row in report.rows:
        assert row.path == folder / row.name
        assert row.size_bytes == row.path.stat().st_size
        assert raw_digest(row.path) == README[row.name]
        assert row.raw_sha256 == README[row.name][1]
    assert leftovers(folder) == []


def test_real_download_over_loopback(tmp_path: Path, shared_mnist: Path, serve_folder: Serve):
    server = serve_folder(shared_mnist)
    progress = Recorder()
    report = download_mnist(tmp_path, [http(server.url)], progress=progress, timeout=10)
    folder = tmp_path / "mnist"
    assert_all_verified(report, folder)
    for row in report.rows:
        assert row.status == "downloaded"
        assert row.mirror == row.url == server.url + row.name
        assert row.attempts == []
        assert row.path.read_bytes() == (shared_mnist / row.name).read_bytes()
        assert server.count("GET", row.name) == 1
    starts = [args for kind, args in progress.calls if kind == "start"]
    assert starts == [(n, (shared_mnist / n).stat().st_size, server.url + n) for n in NAMES]
    advanced = sum(n for kind, n in progress.calls if kind == "advance")  # type: ignore[misc]
    assert advanced == sum((shared_mnist / n).stat().st_size for n in NAMES)
    assert [args for kind, args in progress.calls if kind == "end"] == [True] * 4


def test_downloaded_files_get_ordinary_permissions(tmp_path: Path, mnist_server: str):
    old = os.umask(0o022)
    try:
        report = download_mnist(tmp_path, [http(mnist_server)], timeout=10)
    finally:
        os.umask(old)
    for row in report.rows:
        assert row.path.stat().st_mode & 0o777 == 0o644, row.name  # not mkstemp's 0600


def test_second_run_downloads_nothing(mnist_copy: Path, shared_mnist: Path, serve_folder: Serve):
    server = serve_folder(shared_mnist)
    progress = Recorder()
    report = download_mnist(mnist_copy, [http(server.url)], progress=progress)
    assert [row.status for row in report.rows] == ["cached"] * 4
    assert all(row.mirror is None and row.attempts == [] for row in report.rows)
    assert_all_verified(report, mnist_copy / "mnist")
    assert server.count("GET") == 0
    assert progress.calls == []


def test_force_downloads_again(mnist_copy: Path, shared_mnist: Path, serve_folder: Serve):
    server = serve_folder(shared_mnist)
    report = download_mnist(mnist_copy, [http(server.url)], force=True)
    assert [row.status for row in report.rows] == ["downloaded"] * 4
    assert [server.count("GET", n) for n in NAMES] == [1, 1, 1, 1]
    assert_all_verified(report, mnist_copy / "mnist")


def test_corrupted_cached_file_is_downloaded_again(
    mnist_copy: Path, shared_mnist: Path, serve_folder: Serve
):
    server = serve_folder(shared_mnist)
    labels = mnist_copy / "mnist" / TRAIN_LABELS
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    (mnist_copy / "mnist" / T10K_LABELS).write_bytes(b"truncated")
    report = download_mnist(mnist_copy, [http(server.url)])
    status = {row.name: row.status for row in report.rows}
    assert status == {
        TRAIN_IMAGES: "cached",
        TRAIN_LABELS: "downloaded",
        T10K_IMAGES: "cached",
        T10K_LABELS: "downloaded",
    }
    assert server.count("GET") == 2
    assert_all_verified(report, mnist_copy / "mnist")


def test_dead_first_mirror_falls_back(
    tmp_path: Path, shared_mnist: Path, serve_folder: Serve, dead_mirror_url: str
):
    server = serve_folder(shared_mnist)
    report = download_mnist(tmp_path, [http(dead_mirror_url), http(server.url)])
    assert_all_verified(report, tmp_path / "mnist")
    for row in report.rows:
        assert row.mirror == server.url + row.name
        assert row.attempts == [(dead_mirror_url + row.name, "connection refused")]


def test_html_and_404_mirrors_fall_back(
    tmp_path: Path, shared_mnist: Path, serve_folder: Serve, bad_folders: dict[str, Path]
):
    html, empty, good = (
        serve_folder(bad_folders["html"]),
        serve_folder(bad_folders["empty"]),
        serve_folder(shared_mnist),
    )
    progress = Recorder()
    report = download_mnist(
        tmp_path, [http(html.url), http(empty.url), http(good.url)], progress=progress
    )
    assert_all_verified(report, tmp_path / "mnist")
    for row in report.rows:
        assert row.mirror == good.url + row.name
        (html_url, html_reason), (missing_url, missing_reason) = row.attempts
        assert (html_url, missing_url) == (html.url + row.name, empty.url + row.name)
        assert html_reason.startswith("not gzip data (starts with b'<!DOCTYPE")
        assert missing_reason == "HTTP 404"
    # the HTML attempt started and ended badly; the 404 never started
    assert [args for kind, args in progress.calls if kind == "end"] == [False, True] * 4


def test_wrong_content_fails_verification_and_falls_back(
    tmp_path: Path, shared_mnist: Path, serve_folder: Serve, bad_folders: dict[str, Path]
):
    wrong, good = serve_folder(bad_folders["wrong"]), serve_folder(shared_mnist)
    report = download_mnist(tmp_path, [http(wrong.url), http(good.url)])
    assert_all_verified(report, tmp_path / "mnist")
    reasons = {row.name: [reason for _, reason in row.attempts] for row in report.rows}
    assert reasons[TRAIN_IMAGES] == [
        "IDX header says uint8 (10000, 28, 28), expected uint8 (60000, 28, 28)"
    ]
    assert len(reasons[TRAIN_LABELS]) == 1
    assert reasons[TRAIN_LABELS][0].startswith("SHA-256 mismatch")
    assert reasons[T10K_IMAGES] == reasons[T10K_LABELS] == ["HTTP 404"]


def test_truncated_gzip_falls_back(
    tmp_path: Path, shared_mnist: Path, serve_folder: Serve, bad_folders: dict[str, Path]
):
    cut, good = serve_folder(bad_folders["cut"]), serve_folder(shared_mnist)
    report = download_mnist(tmp_path, [http(cut.url), http(good.url)])
    assert_all_verified(report, tmp_path / "mnist")
    for row in report.rows:
        assert [reason for _, reason in row.attempts] == [
            "corrupt gzip stream: it ends before its end-of-stream marker"
        ]


def test_silent_mirror_times_out_and_falls_back(
    tmp_path: Path, shared_mnist: Path, serve_folder: Serve, silent_mirror_url: str
):
    good = serve_folder(shared_mnist)
    mirrors = [http(silent_mirror_url), http(good.url)]
    report = download_mnist(tmp_path, mirrors, timeout=0.3, retries=1, backoff=0.01)
    assert_all_verified(report, tmp_path / "mnist")
    first, *later = report.rows  # a timeout is transient: tried twice (retries=1), then the
    assert first.attempts == [(silent_mirror_url + first.name, "timed out")] * 2  # next...
    for row in later:  # ... and a mirror that timed out is not tried for the other files
        assert row.attempts == [] and row.mirror.startswith(good.url)


def test_all_mirrors_failing_lists_every_url(
    tmp_path: Path, serve_folder: Serve, bad_folders: dict[str, Path], dead_mirror_url: str
):
    html, empty, wrong = (serve_folder(bad_folders[k]) for k in ("html", "empty", "wrong"))
    mirrors = [http(dead_mirror_url), http(html.url), http(empty.url), http(wrong.url)]
    with pytest.raises(DownloadError) as info:
        download_mnist(tmp_path, mirrors)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {TRAIN_IMAGES}: ")
    expected = [
        f"{dead_mirror_url}{TRAIN_IMAGES} (connection refused)",
        f"{html.url}{TRAIN_IMAGES} (not gzip data",
        f"{empty.url}{TRAIN_IMAGES} (HTTP 404)",
        f"{wrong.url}{TRAIN_IMAGES} (IDX header says uint8 (10000, 28, 28)",
    ]
    positions = [message.index(part) for part in expected]
    assert positions == sorted(positions)
    folder = tmp_path / "mnist"
    assert list(folder.iterdir()) == []  # no .part file, no half-written file


def test_offline_is_asked_only_when_no_server_answered(
    tmp_path: Path, serve_folder: Serve, bad_folders: dict[str, Path], dead_mirror_url: str
) -> None:
    """A mirror that answered with an HTML page was followed by "offline?" (a helper's
    report on #13)."""
    with pytest.raises(DownloadError) as dead:
        download_mnist(tmp_path / "a", [http(dead_mirror_url)], retries=0)
    assert str(dead.value).endswith(
        "(connection refused); offline? give a mirror: a folder or a reachable URL holding "
        "the four files"
    )
    html = serve_folder(bad_folders["html"])
    with pytest.raises(DownloadError) as answered:
        download_mnist(tmp_path / "b", [http(dead_mirror_url), http(html.url)], retries=0)
    message = str(answered.value)
    assert "offline?" not in message and message.endswith(
        "; give another mirror: a folder or a URL holding the four MNIST .gz files"
    )


def test_each_url_tried_is_named_once_with_its_reasons_counted() -> None:
    """A retried mirror repeated its URL for each attempt."""
    attempts = [
        ("http://a/x.gz", "timed out"),
        ("http://a/x.gz", "timed out"),
        ("http://b/x.gz", "HTTP 404"),
        ("http://a/x.gz", "body cut short"),
    ]
    assert tried_text(attempts) == (
        "http://a/x.gz (timed out x2; body cut short); http://b/x.gz (HTTP 404)"
    )
    assert tried_text([]) == ""


def test_interrupt_keeps_only_a_part_file(tmp_path: Path, shared_mnist: Path, serve_folder: Serve):
    class Interrupting(Recorder):
        def advance(self, n_bytes: int) -> None:
            super().advance(n_bytes)
            raise KeyboardInterrupt

    server = serve_folder(shared_mnist)
    progress = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        download_mnist(tmp_path, [http(server.url)], progress=progress)
    # nothing under a final name; the bytes so far wait in .NAME.*.part for a resume
    (part,) = (tmp_path / "mnist").iterdir()
    assert part.name.startswith(f".{TRAIN_IMAGES}.") and part.name.endswith(".part")
    assert part.stat().st_size == progress.calls[1][1]
    assert progress.calls[-1] == ("end", False)


def test_local_folder_mirror(tmp_path: Path, shared_mnist: Path, bad_folders: dict[str, Path]):
    mirrors = [parse_mirror(str(bad_folders["empty"])), parse_mirror(shared_mnist.as_uri())]
    report = download_mnist(tmp_path / "data", mirrors)
    assert_all_verified(report, tmp_path / "data" / "mnist")
    for row in report.rows:
        assert row.status == "downloaded"
        assert row.mirror == str(shared_mnist.resolve() / row.name)
        assert len(row.attempts) == 1
        assert row.attempts[0][0] == str(bad_folders["empty"].resolve() / row.name)
        assert "No such file" in row.attempts[0][1]


def test_report_to_dict_is_json(mnist_copy: Path, dead_mirror_url: str):
    report = download_mnist(mnist_copy, [http(dead_mirror_url)])
    data = json.loads(json.dumps(report.to_dict()))
    assert [row["status"] for row in data["rows"]] == ["cached"] * 4
    assert data["rows"][0] == {
        "name": TRAIN_IMAGES,
        "path": str(mnist_copy / "mnist" / TRAIN_IMAGES),
        "size_bytes": (mnist_copy / "mnist" / TRAIN_IMAGES).stat().st_size,
        "raw_sha256": README[TRAIN_IMAGES][1],
        "status": "cached",
        "mirror": None,
        "url": None,
        "attempts": [],
    }


def test_no_mirrors_is_config_error_naming_the_parameter(tmp_path: Path):
    message = r"^no MNIST mirrors to download from; give at least one in mirrors"
    with pytest.raises(ConfigError, match=message) as info:
        download_mnist(tmp_path, [])
    assert info.value.param == "mirrors"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"retries": -1}, "retries must be 0 to 100, got -1"),
        ({"retries": 1025}, "retries must be 0 to 100, got 1025"),
        ({"backoff": float("nan")}, "backoff must be 0 to 3600 seconds, got nan"),
        ({"timeout": 0}, "timeout must be in (0, 3600] seconds, got 0"),
        ({"timeout": float("inf")}, "timeout must be in (0, 3600] seconds, got inf"),
        ({"timeout": 1e10}, "timeout must be in (0, 3600] seconds, got 10000000000.0"),
    ],
)
def test_bad_setting_is_config_error_naming_the_parameter(
    tmp_path: Path, setting: dict[str, Any], message: str
):
    with pytest.raises(ConfigError) as info:
        download_mnist(tmp_path, [parse_mirror(str(tmp_path))], **setting)
    assert str(info.value) == message
    assert info.value.param == next(iter(setting))
    assert "--" not in message
    assert not (tmp_path / "mnist").exists()  # checked before anything is written


def test_verify_file(shared_mnist: Path, bad_folders: dict[str, Path], tmp_path: Path):
    for spec in MNIST_FILES:
        assert verify_file(shared_mnist / spec.name, spec) is None
    raw_labels = tmp_path / "raw-labels"
    raw_labels.write_bytes(gzip.decompress((shared_mnist / TRAIN_LABELS).read_bytes()))
    assert verify_file(raw_labels, mnist_file(TRAIN_LABELS)) is None
    wrong = bad_folders["wrong"]
    assert "IDX header says" in str(verify_file(wrong / TRAIN_IMAGES, mnist_file(TRAIN_IMAGES)))
    assert "SHA-256 mismatch" in str(verify_file(wrong / TRAIN_LABELS, mnist_file(TRAIN_LABELS)))
    assert "bad magic" in str(verify_file(bad_folders["html"] / T10K_LABELS, MNIST_FILES[3]))
    assert verify_file(tmp_path / "absent", MNIST_FILES[0]) == "No such file or directory"


def test_a_folder_in_place_of_a_file_is_a_local_error(tmp_path: Path, dead_mirror_url: str):
    (tmp_path / "mnist" / NAMES[0]).mkdir(parents=True)
    with pytest.raises(DataError, match="not a regular file"):
        download_mnist(tmp_path, [http(dead_mirror_url)], timeout=5)


class _ForwardProxy(SimpleHTTPRequestHandler):
    """A forward proxy for tests: answers `GET http://any.host/NAME` with the shared file NAME."""

    def translate_path(self, path: str) -> str:
        return super().translate_path(urllib.parse.urlsplit(path).path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_http_proxy_setting_is_honoured(
    tmp_path: Path, shared_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = functools.partial(_ForwardProxy, directory=str(shared_mnist))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # mnist.invalid is never resolved here: the request goes to the proxy on loopback
        report = download_mnist(tmp_path, [http("http://mnist.invalid/")], timeout=10)
        proxy.shutdown()
    assert [r.status for r in report.rows] == ["downloaded"] * 4


def test_tls_verification_uses_requests_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_mirror_url: str
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "no-such-bundle.pem"))
    https = dead_mirror_url.replace("http://", "https://")
    with pytest.raises(DownloadError) as failed:
        download_mnist(tmp_path, [http(https)], timeout=5, retries=0)
    # the bundle named in the environment was used (and verification stayed on)
    assert "bundle" in str(failed.value).lower() or "certificate" in str(failed.value).lower()
