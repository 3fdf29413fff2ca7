"""A file's deadline and byte cap hold for all of a mirror's attempts together, and from
the first byte of the answer, not the body's: a helper's report on #13 found headers
trickled or `100 Continue` sent without end never timed out, --retries multiplied the
deadline (228 s) and the cap (2.8 MB for a 125 KB file), a FIFO in a local mirror hung,
and a redirect to `http://[::1` was a traceback that skipped the next mirrors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fcgrad.data import transfer
from fcgrad.data.download import download_mnist
from fcgrad.data.mirrors import Mirror, mnist_file, parse_mirror
from tests.data.faulty_server import (
    NAMES,
    Fault,
    FaultyServer,
    bad_location,
    endless_continue,
    http,
    stall,
    trickle_headers,
    truncate_whole,
)

LABELS = NAMES[1]


def fetch(data_dir: Path, mirrors: list[Mirror], **kw: Any) -> dict[str, Any]:
    """download_mnist with test-sized settings; its rows by file name."""
    settings: dict[str, Any] = {"timeout": 2.0, "retries": 2, "backoff": 0.0, **kw}
    return {r.name: r for r in download_mnist(data_dir, mirrors, **settings).rows}


@pytest.mark.parametrize("fault", [trickle_headers, endless_continue], ids=lambda f: f.__name__)
def test_an_answer_that_never_reaches_its_body_meets_the_deadline(
    servers: Callable[[], FaultyServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[], Fault],
) -> None:
    """The watchdog cuts the connection at the file's deadline (here 0.5 s), and the mirror
    is not asked again."""
    monkeypatch.setattr(transfer, "file_deadline", lambda spec, timeout: 0.5)
    slow, good = servers(), servers()
    slow.plan(LABELS, fault())
    rows = fetch(tmp_path, [http(slow), http(good)])
    (attempt,) = rows[LABELS].attempts
    assert attempt[1] == "too slow: no whole answer in 0 s, the deadline for this file"
    assert rows[LABELS].mirror.startswith(good.url)
    for name in NAMES[2:]:
        assert slow.requests(name) == [] and rows[name].mirror.startswith(good.url)


def test_the_deadline_is_for_all_of_a_mirrors_attempts(
    servers: Callable[[], FaultyServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror that stalls each answer past the read timeout (0.2 s) is retried until
    the file's deadline (1 s), not --retries 100 times over."""
    monkeypatch.setattr(transfer, "file_deadline", lambda spec, timeout: 1.0)
    slow, good = servers(), servers()
    slow.plan(LABELS, then=stall(10))
    rows = fetch(tmp_path, [http(slow), http(good)], timeout=0.2, retries=100)
    assert rows[LABELS].mirror.startswith(good.url)
    assert 1 <= len(slow.requests(LABELS)) <= 6


def test_the_byte_cap_is_for_all_of_a_mirrors_attempts(
    servers: Callable[[], FaultyServer], tmp_path: Path
) -> None:
    """A mirror that sends 90% of the file from byte 0 again at each retry is stopped at
    twice the most bytes a gzip of the file can take, all attempts together."""
    bad, good = servers(), servers()
    bad.plan(LABELS, then=truncate_whole(0.9))
    rows = fetch(tmp_path, [http(bad), http(good)], retries=100)
    cap = 2 * transfer.max_gzip_bytes(mnist_file(LABELS))
    assert rows[LABELS].mirror.startswith(good.url)
    assert rows[LABELS].attempts[-1][1] == (
        f"sent more than {cap:,} bytes over its attempts, twice any gzip of the file"
    )
    assert sum(r.bytes_sent for r in bad.requests(LABELS)) < cap + 2**20


def test_a_redirect_to_a_malformed_url_moves_on_to_the_next_mirror(
    servers: Callable[[], FaultyServer], tmp_path: Path
) -> None:
    bad, good = servers(), servers()
    bad.plan(LABELS, bad_location())
    rows = fetch(tmp_path, [http(bad), http(good)])
    (attempt,) = rows[LABELS].attempts
    assert attempt[1] == "redirected to a malformed URL (Invalid IPv6 URL)"
    assert rows[LABELS].mirror.startswith(good.url)


def test_a_fifo_in_a_local_mirror_is_refused_not_waited_on(
    servers: Callable[[], FaultyServer], tmp_path: Path
) -> None:
    """Opening a FIFO blocks until something writes to it: the download hung."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in NAMES:
        os.mkfifo(folder / name)
    good = servers()
    rows = fetch(tmp_path / "data", [parse_mirror(str(folder)), http(good)])
    for name in NAMES:
        (attempt,) = rows[name].attempts
        assert attempt == (
            str(folder / name),
            f"{folder / name} is a FIFO (a named pipe), not a regular file",
        )
        assert rows[name].mirror.startswith(good.url)
