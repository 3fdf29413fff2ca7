"""download_mnist against a fault-injecting loopback server, and load_mnist on damaged files.

Every server is tests/data/faulty_server.py on 127.0.0.1; every download uses a short
timeout and a tiny backoff so that retries cost milliseconds. Faults are planned on the
two small label files unless the fault needs a big body (resume: train-images).
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fcgrad.data import Mirror, download_mnist, load_mnist, partfile, transfer
from fcgrad.data.mirrors import mnist_file
from fcgrad.errors import DataError, DownloadError
from tests.data.faulty_server import (
    HTML,
    IGNORE_RANGE,
    NAMES,
    Fault,
    FaultyServer,
    Recorder,
    endless,
    endless_members,
    gzip_encoded,
    http,
    redirect,
    reset,
    stall,
    status,
    trickle,
    truncate,
    wrong_file,
)

TRAIN_IMAGES, TRAIN_LABELS, T10K_IMAGES, T10K_LABELS = NAMES
CHUNK = 64 * 1024  # the client's read size: the most a broken transfer loses

Servers = Callable[[], FaultyServer]


def fetch(data_dir: Path, mirrors: list[Mirror], **kw: Any) -> Any:
    """download_mnist with test-sized timeout and backoff."""
    settings: dict[str, Any] = {"timeout": 2.0, "retries": 2, "backoff": 0.01, **kw}
    return download_mnist(data_dir, mirrors, **settings)


def assert_only_verified(data_dir: Path, shared: Path) -> None:
    """mnist/ holds exactly the four files, byte for byte the served ones: no .part left."""
    folder = data_dir / "mnist"
    assert sorted(os.listdir(folder)) == sorted(NAMES)
    for name in NAMES:
        assert (folder / name).read_bytes() == (shared / name).read_bytes(), name


def parts(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "mnist").glob(".*.part"))


def row_of(report: Any, name: str) -> Any:
    (row,) = [r for r in report.rows if r.name == name]
    return row


# ----------------------------------------------------------------------------- not retried


@pytest.mark.parametrize("code", [403, 404])
def test_client_error_goes_to_the_next_mirror_without_retry(
    tmp_path: Path, shared_mnist: Path, servers: Servers, code: int
) -> None:
    bad, good = servers(), servers()
    bad.plan(T10K_LABELS, then=status(code))
    report = fetch(tmp_path, [http(bad), http(good)])
    row = row_of(report, T10K_LABELS)
    assert row.mirror == good.url + T10K_LABELS
    assert row.attempts == [(bad.url + T10K_LABELS, f"HTTP {code}")]
    assert len(bad.requests(T10K_LABELS)) == 1  # no retry on the same mirror
    assert all(row_of(report, n).attempts == [] for n in NAMES if n != T10K_LABELS)
    assert_only_verified(tmp_path, shared_mnist)


def test_html_page_goes_to_the_next_mirror_without_retry(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    bad, good = servers(), servers()
    bad.plan(TRAIN_LABELS, then=HTML)
    report = fetch(tmp_path, [http(bad), http(good)])
    row = row_of(report, TRAIN_LABELS)
    assert row.mirror == good.url + TRAIN_LABELS
    ((url, reason),) = row.attempts
    assert url == bad.url + TRAIN_LABELS
    assert reason.startswith("not gzip data (starts with b'<!DOCTYPE html>")
    assert len(bad.requests(TRAIN_LABELS)) == 1
    assert_only_verified(tmp_path, shared_mnist)


def test_wrong_file_goes_to_the_next_mirror_without_retry(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    bad, good = servers(), servers()
    bad.plan(T10K_LABELS, then=wrong_file(TRAIN_LABELS))  # the other split's labels
    report = fetch(tmp_path, [http(bad), http(good)])
    row = row_of(report, T10K_LABELS)
    assert row.mirror == good.url + T10K_LABELS
    assert row.attempts == [
        (bad.url + T10K_LABELS, "IDX header says uint8 (60000,), expected uint8 (10000,)")
    ]
    assert len(bad.requests(T10K_LABELS)) == 1
    assert_only_verified(tmp_path, shared_mnist)


# ----------------------------------------------------------------------------- retried


@pytest.mark.parametrize("code", [500, 503])
def test_server_error_is_retried_on_the_same_mirror(
    tmp_path: Path, shared_mnist: Path, servers: Servers, code: int
) -> None:
    flaky, unused = servers(), servers()
    flaky.plan(T10K_LABELS, status(code))  # the first request fails, the second works
    report = fetch(tmp_path, [http(flaky), http(unused)])
    row = row_of(report, T10K_LABELS)
    assert row.mirror == flaky.url + T10K_LABELS
    assert row.attempts == [(flaky.url + T10K_LABELS, f"HTTP {code}")]
    assert [r.status for r in flaky.requests(T10K_LABELS)] == [code, 200]
    assert unused.requests() == []
    assert_only_verified(tmp_path, shared_mnist)


def test_persistent_503_tries_three_times_then_the_next_mirror(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    bad, good = servers(), servers()
    bad.plan(TRAIN_LABELS, then=status(503))
    report = fetch(tmp_path, [http(bad), http(good)], retries=2)
    row = row_of(report, TRAIN_LABELS)
    assert row.mirror == good.url + TRAIN_LABELS
    assert row.attempts == [(bad.url + TRAIN_LABELS, "HTTP 503")] * 3
    assert len(bad.requests(TRAIN_LABELS)) == 3
    assert_only_verified(tmp_path, shared_mnist)


def test_connection_reset_is_retried_then_the_next_mirror(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    bad, good = servers(), servers()
    bad.plan(T10K_LABELS, then=reset(at=0.5))
    report = fetch(tmp_path, [http(bad), http(good)], retries=1)
    row = row_of(report, T10K_LABELS)
    assert row.mirror == good.url + T10K_LABELS
    assert row.attempts == [(bad.url + T10K_LABELS, "connection reset during transfer")] * 2
    first, second = bad.requests(T10K_LABELS)
    size = (shared_mnist / T10K_LABELS).stat().st_size
    half = size // 2
    assert first.bytes_sent == half and first.range is None
    # the bytes that arrived before the reset are kept: the retry resumes after them
    assert second.range == f"bytes={half}-" and second.bytes_sent == int((size - half) * 0.5)
    assert_only_verified(tmp_path, shared_mnist)


def test_truncated_body_is_resumed_with_a_range_request(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    size = (shared_mnist / T10K_IMAGES).stat().st_size
    server = servers()
    server.plan(T10K_IMAGES, truncate(at=0.5))
    progress = Recorder()
    report = fetch(tmp_path, [http(server)], progress=progress)
    row = row_of(report, T10K_IMAGES)
    ((url, reason),) = row.attempts
    assert url == server.url + T10K_IMAGES
    half = size // 2
    assert reason == f"body cut short ({half} bytes received, {size - half} more announced)"
    first, second = server.requests(T10K_IMAGES)
    (_, kept, ok), _ = progress.attempts_of(T10K_IMAGES)
    assert not ok
    assert (first.range, first.bytes_sent) == (None, size // 2)
    assert second.range == f"bytes={sum(kept)}-" and second.status == 206
    assert size // 2 - CHUNK < sum(kept) <= size // 2
    assert first.bytes_sent + second.bytes_sent < size + CHUNK
    assert_only_verified(tmp_path, shared_mnist)


@pytest.mark.parametrize("fault", [endless, endless_members], ids=["header", "empty members"])
def test_an_endless_gzip_is_cut_at_the_files_bound(
    servers: Servers, tmp_path: Path, fault: Callable[[], Fault]
) -> None:
    """Issue #13: a mirror sending an endless gzip header (or endless empty members) wrote
    hundreds of MB for a 4.5 KB file. A transfer now stops at the most bytes a gzip of
    the file can take."""
    bad, good = servers(), servers()
    bad.plan(TRAIN_LABELS, fault())
    report = fetch(tmp_path, [http(bad), http(good)])
    (row,) = [r for r in report.rows if r.name == TRAIN_LABELS]
    assert row.status == "downloaded" and row.mirror.startswith(good.url)
    cap = transfer.max_gzip_bytes(mnist_file(TRAIN_LABELS))
    assert cap < 200_000
    (attempt,) = row.attempts
    assert f"sent more than {cap:,} bytes" in attempt[1]
    sent = bad.requests(TRAIN_LABELS)[0].bytes_sent
    assert sent < 16 * 2**20  # the client hung up, long before the server's 64 MB
    assert not list((tmp_path / "mnist").glob(".*.part*"))  # nothing kept of it


def test_a_gz_file_labelled_content_encoding_gzip_is_kept_as_sent(
    servers: Servers, tmp_path: Path
) -> None:
    """Issue #13: it was decoded on the way and refused as 'not gzip data'."""
    server = servers()
    server.plan(TRAIN_LABELS, gzip_encoded())
    report = fetch(tmp_path, [http(server)])
    (row,) = [r for r in report.rows if r.name == TRAIN_LABELS]
    assert row.status == "downloaded" and not row.attempts


def test_a_trickling_mirror_meets_the_files_deadline_and_is_not_tried_again(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #13: a byte every half second never tripped the per-read timeout (2,261 s
    for a 4.5 KB file). Each transfer now has a total deadline (here 0.5 s), and a mirror
    that missed it is left for the rest of the run."""
    monkeypatch.setattr(transfer, "file_deadline", lambda spec, timeout: 0.5)
    slow, good = servers(), servers()
    slow.plan(TRAIN_LABELS, trickle())
    slow.plan(T10K_LABELS, trickle())
    report = fetch(tmp_path, [http(slow), http(good)])
    rows = {r.name: r for r in report.rows}
    (attempt,) = rows[TRAIN_LABELS].attempts
    assert attempt[1].startswith("too slow: ") and "in 0 s, the deadline" in attempt[1]
    assert rows[TRAIN_LABELS].mirror.startswith(good.url)
    later = [n for n in NAMES if NAMES.index(n) > NAMES.index(TRAIN_LABELS)]
    for name in later:  # the slow mirror was not asked again
        assert rows[name].attempts == [] and rows[name].mirror.startswith(good.url)
        assert slow.requests(name) == []


def test_stall_times_out_and_is_retried(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    server = servers()
    server.plan(TRAIN_LABELS, stall(seconds=5.0, at=0.0))
    report = fetch(tmp_path, [http(server)], timeout=0.3)  # the client gives up on the stall
    row = row_of(report, TRAIN_LABELS)
    assert row.mirror == server.url + TRAIN_LABELS
    assert row.attempts == [(server.url + TRAIN_LABELS, "timed out")]
    assert [r.status for r in server.requests(TRAIN_LABELS)] == [200, 200]
    assert_only_verified(tmp_path, shared_mnist)


def test_redirect_is_followed_and_the_final_url_reported(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    server = servers()
    server.plan(T10K_LABELS, then=redirect())
    progress = Recorder()
    report = fetch(tmp_path, [http(server)], progress=progress)
    row = row_of(report, T10K_LABELS)
    final = server.url + "moved/" + T10K_LABELS
    assert (row.mirror, row.url, row.attempts) == (server.url + T10K_LABELS, final, [])
    assert row.to_dict()["url"] == final
    assert [(r.path, r.status) for r in server.requests(T10K_LABELS)] == [
        ("/" + T10K_LABELS, 302),
        ("/moved/" + T10K_LABELS, 200),
    ]
    ((args, _, ok),) = progress.attempts_of(T10K_LABELS)
    assert args[2] == final and ok
    assert row_of(report, TRAIN_LABELS).url == server.url + TRAIN_LABELS  # not redirected
    assert_only_verified(tmp_path, shared_mnist)


# ----------------------------------------------------------------------------- resume


def test_reset_half_way_resumes_where_it_stopped(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    size = (shared_mnist / TRAIN_IMAGES).stat().st_size
    server = servers()
    server.plan(TRAIN_IMAGES, reset(at=0.5))
    progress = Recorder()
    report = fetch(tmp_path, [http(server)], progress=progress)
    row = row_of(report, TRAIN_IMAGES)
    assert row.attempts == [(server.url + TRAIN_IMAGES, "connection reset during transfer")]
    assert row.mirror == server.url + TRAIN_IMAGES
    (start1, kept, ok1), (start2, advances2, ok2) = progress.attempts_of(TRAIN_IMAGES)
    assert (ok1, ok2) == (False, True)
    assert start1 == start2 == (TRAIN_IMAGES, size, server.url + TRAIN_IMAGES)
    assert advances2[0] == sum(kept)  # the resumed attempt counts the bytes already here
    assert sum(advances2) == size
    first, second = server.requests(TRAIN_IMAGES)
    assert (first.range, first.status, first.bytes_sent) == (None, 200, size // 2)
    assert second.range_start == sum(kept)  # starts exactly where the first stopped
    assert size // 2 - CHUNK < sum(kept) <= size // 2
    assert second.status == 206 and second.bytes_sent == size - sum(kept)
    assert server.bytes_sent(TRAIN_IMAGES) < size + CHUNK  # about the file, not 1.5x
    assert_only_verified(tmp_path, shared_mnist)


def test_server_ignoring_range_starts_over(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    size = (shared_mnist / T10K_IMAGES).stat().st_size
    server = servers()
    server.plan(T10K_IMAGES, reset(at=0.5), IGNORE_RANGE)
    report = fetch(tmp_path, [http(server)])
    first, second = server.requests(T10K_IMAGES)
    assert first.status == 200 and first.range is None
    assert second.range_start is not None and second.range_start > 0
    assert (second.status, second.bytes_sent) == (200, size)  # whole file, written from 0
    assert row_of(report, T10K_IMAGES).attempts == [
        (server.url + T10K_IMAGES, "connection reset during transfer")
    ]
    assert_only_verified(tmp_path, shared_mnist)


def test_ctrl_c_keeps_a_part_file_that_the_next_run_resumes(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    class Interrupting(Recorder):
        def advance(self, n_bytes: int) -> None:
            super().advance(n_bytes)
            if sum(n for kind, n in self.calls if kind == "advance") > 3_000_000:
                raise KeyboardInterrupt

    size = (shared_mnist / TRAIN_IMAGES).stat().st_size
    server = servers()
    interrupting = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        fetch(tmp_path, [http(server)], progress=interrupting)
    folder = tmp_path / "mnist"
    assert not (folder / TRAIN_IMAGES).exists()
    (part,) = os.listdir(folder)  # nothing else: only the clearly named temp file
    assert part.startswith(f".{TRAIN_IMAGES}.") and part.endswith(".part")
    got = sum(n for kind, n in interrupting.calls if kind == "advance")
    assert (folder / part).stat().st_size == got
    assert interrupting.calls[-1] == ("end", False)

    report = fetch(tmp_path, [http(server)])
    first, second = server.requests(TRAIN_IMAGES)
    assert first.range is None and second.range == f"bytes={got}-"
    assert second.status == 206 and second.bytes_sent == size - got
    assert row_of(report, TRAIN_IMAGES).attempts == []
    assert_only_verified(tmp_path, shared_mnist)


def test_a_complete_part_file_is_finished_without_a_body(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    # interrupted after the last byte but before the rename: the server says 416
    folder = tmp_path / "mnist"
    folder.mkdir()
    shutil.copy(shared_mnist / TRAIN_LABELS, folder / f".{TRAIN_LABELS}.abc123.part")
    server = servers()
    report = fetch(tmp_path, [http(server)])
    (request,) = server.requests(TRAIN_LABELS)
    assert (request.status, request.bytes_sent) == (416, 0)
    assert row_of(report, TRAIN_LABELS).status == "downloaded"
    assert_only_verified(tmp_path, shared_mnist)


def test_a_part_file_of_another_compression_is_dropped_after_the_resume_fails(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    # half of a differently compressed copy: a valid start, but it cannot be spliced
    raw = gzip.decompress((shared_mnist / TRAIN_LABELS).read_bytes())
    other = gzip.compress(raw, compresslevel=1, mtime=0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / f".{TRAIN_LABELS}.old.part").write_bytes(other[: len(other) // 2])
    server = servers()
    report = fetch(tmp_path, [http(server)])
    row = row_of(report, TRAIN_LABELS)
    ((url, reason),) = row.attempts
    assert url == server.url + TRAIN_LABELS and reason.endswith("after resuming")
    first, second = server.requests(TRAIN_LABELS)
    assert first.range == f"bytes={len(other) // 2}-" and second.range is None
    assert_only_verified(tmp_path, shared_mnist)


def test_stale_part_files_are_reused_or_removed(
    tmp_path: Path, shared_mnist: Path, servers: Servers
) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    labels = (shared_mnist / T10K_LABELS).read_bytes()
    (folder / f".{T10K_LABELS}.small.part").write_bytes(labels[:100])
    (folder / f".{T10K_LABELS}.big.part").write_bytes(labels[:3000])
    (folder / f".{TRAIN_LABELS}.junk.part").write_bytes(b"<html>not the file</html>")
    server = servers()
    fetch(tmp_path, [http(server)])
    assert server.requests(T10K_LABELS)[0].range == "bytes=3000-"  # the largest is resumed
    assert server.requests(TRAIN_LABELS)[0].range is None  # junk is not resumed
    assert_only_verified(tmp_path, shared_mnist)
    # a part file next to a verified file is removed on the next run
    (folder / f".{T10K_LABELS}.late.part").write_bytes(labels[:100])
    report = fetch(tmp_path, [http(server)])
    assert [r.status for r in report.rows] == ["cached"] * 4
    assert_only_verified(tmp_path, shared_mnist)


# ----------------------------------------------------------------------------- bounds, disk


def test_the_files_bounds_hand_computed() -> None:
    """A gzip of n bytes in stored blocks takes n + 5 per 65,535-byte block, plus at most
    64 KB of header and trailer; a transfer may take ten read timeouts plus those bytes
    at 64 KB/s."""
    labels, images = mnist_file(TRAIN_LABELS), mnist_file(TRAIN_IMAGES)
    assert labels.raw_size == 60_008 and images.raw_size == 47_040_016
    assert transfer.max_gzip_bytes(labels) == 60_008 + 5 * 1 + 65_536 == 125_549
    assert transfer.max_gzip_bytes(images) == 47_040_016 + 5 * 718 + 65_536 == 47_109_142
    assert transfer.file_deadline(labels, 1.0) == pytest.approx(10 + 125_549 / 65_536)  # 11.9 s
    assert transfer.file_deadline(images, 30.0) == pytest.approx(300 + 47_109_142 / 65_536)
    assert 16 * 60 < transfer.file_deadline(images, 30.0) < 17 * 60


def test_backoff_doubles_and_is_capped(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(transfer, "_sleep", slept.append)
    a, b = servers(), servers()
    for server in (a, b):
        server.plan(TRAIN_IMAGES, then=status(503))
    with pytest.raises(DownloadError) as info:
        fetch(tmp_path, [http(a), http(b)], retries=2, backoff=1.0)
    assert slept == [1.0, 2.0, 1.0, 1.0]  # 1, 2, then the 5 s budget runs out
    assert sum(slept) <= transfer.MAX_BACKOFF_SECONDS
    message = str(info.value)
    assert "\n" not in message
    assert message.count(f"{a.url}{TRAIN_IMAGES} (HTTP 503 x3)") == 1  # 1 + 2 retries
    assert message.count(f"{b.url}{TRAIN_IMAGES} (HTTP 503 x3)") == 1
    assert os.listdir(tmp_path / "mnist") == []


def test_full_disk_is_a_data_error_naming_the_folder(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []

    def write(out: Any, data: bytes) -> None:
        if sum(written) > 200_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        out.write(data)
        written.append(len(data))

    monkeypatch.setattr(partfile, "_write_bytes", write)
    server = servers()
    with pytest.raises(DataError) as info:
        fetch(tmp_path, [http(server)])
    message = str(info.value)
    assert str(tmp_path / "mnist") in message
    assert "no space left" in message and "\n" not in message
    assert len(server.requests(TRAIN_IMAGES)) == 1  # not retried, no other mirror tried
    assert os.listdir(tmp_path / "mnist") == []  # the partial file is removed to free space


# ----------------------------------------------------------------------------- data at rest


@pytest.fixture
def damaged_dir(tmp_path: Path, shared_mnist: Path) -> Path:
    """A data dir with symlinks to the shared files, except a private copy of t10k-labels."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in NAMES:
        if name == T10K_LABELS:
            shutil.copy(shared_mnist / name, folder / name)
        else:
            (folder / name).symlink_to(shared_mnist / name)
    return tmp_path / "data"


def assert_names_file_and_fix(info: pytest.ExceptionInfo[DataError], data_dir: Path) -> None:
    message = str(info.value)
    assert str(data_dir / "mnist" / T10K_LABELS) in message
    assert f"fcgrad download mnist --force --data-dir {data_dir}" in message
    assert "\n" not in message


def test_truncated_cached_file_is_a_data_error(damaged_dir: Path) -> None:
    path = damaged_dir / "mnist" / T10K_LABELS
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError) as info:
        load_mnist(damaged_dir)
    assert_names_file_and_fix(info, damaged_dir)
    assert "corrupt gzip stream" in str(info.value)


def test_flipped_byte_in_the_gzip_payload_is_a_data_error(damaged_dir: Path) -> None:
    path = damaged_dir / "mnist" / T10K_LABELS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_mnist(damaged_dir)
    assert_names_file_and_fix(info, damaged_dir)


def test_valid_gzip_with_a_changed_label_fails_the_sha256(damaged_dir: Path) -> None:
    # gzip and the IDX header are fine; only the SHA-256 of the content can tell
    path = damaged_dir / "mnist" / T10K_LABELS
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as info:
        load_mnist(damaged_dir)
    assert_names_file_and_fix(info, damaged_dir)
    assert "SHA-256" in str(info.value)
