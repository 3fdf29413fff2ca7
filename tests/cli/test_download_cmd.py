"""`fcgrad download mnist` end to end on the real MNIST, served over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run, run_json


def test_download_retries_and_backoff_options(
    tmp_path: Path, shared_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fcgrad.data import transfer
    from tests.data.faulty_server import FaultyServer, status

    waits: list[float] = []
    monkeypatch.setattr(transfer, "_sleep", waits.append)  # the backoff asked for, not timed
    name = "t10k-labels-idx1-ubyte.gz"
    for retries, backoff, code in (("1", "0", 1), ("2", "0.2", 0)):
        waits.clear()
        with FaultyServer(shared_mnist) as server:
            server.plan(name, status(503), status(503))  # the third GET gets the file
            result = run(
                *("download", "mnist", "--mirror", server.url, "--no-default-mirrors"),
                *("--retries", retries, "--backoff", backoff, "--data-dir", tmp_path / retries),
            )
            assert result.exit_code == code, result.output
            assert len(server.requests(name)) == 1 + int(retries)
        if code:
            assert "HTTP 503" in result.stderr
        else:
            assert waits == [0.2, 0.4]  # 0.2 s, then doubled


def test_a_mirror_retried_counts_once_among_the_failed(
    tmp_path: Path, shared_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #13: a mirror asked twice (a retry) was counted as "2 mirrors failed"."""
    from fcgrad.data import transfer
    from tests.data.faulty_server import FaultyServer, status

    monkeypatch.setattr(transfer, "_sleep", lambda seconds: None)  # no real backoff
    name = "t10k-labels-idx1-ubyte.gz"
    with FaultyServer(shared_mnist) as bad, FaultyServer(shared_mnist) as good:
        bad.plan(name, status(503), status(503))
        result = run(
            *("download", "mnist", "--no-default-mirrors", "--retries", "1"),
            *("--mirror", bad.url, "--mirror", good.url, "--data-dir", tmp_path),
        )
        assert result.exit_code == 0, result.output
        assert len(bad.requests(name)) == 2  # asked, then retried once
    shown = " ".join(result.stdout.split())
    assert shown.count(f"{bad.url} failed for") == 1  # one line for the mirror, asked twice
    assert f"{bad.url} failed for {name} (HTTP 503)" in shown


def test_download_then_cached_then_fallback(
    tmp_path: Path, shared_mnist: Path, serve_folder: Callable[[Path], Any], dead_mirror_url: str
) -> None:
    server = serve_folder(shared_mnist)
    first = run_json("download", "mnist", "--mirror", server.url, "--data-dir", tmp_path)
    assert [r["status"] for r in first["rows"]] == ["downloaded"] * 4
    assert server.count("GET") == 4
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(
        r["name"] for r in first["rows"]
    )

    again = run("download", "mnist", "--mirror", server.url, "--data-dir", tmp_path)
    assert again.exit_code == 0 and "already here" in again.stdout
    assert server.count("GET") == 4  # the second run verified what was there and fetched nothing

    forced = run_json(
        "download",
        "mnist",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        server.url,
        "--data-dir",
        tmp_path,
        "--force",
    )
    assert server.count("GET") == 8
    for row in forced["rows"]:
        assert row["status"] == "downloaded" and row["mirror"].startswith(server.url)
        assert [a["url"] for a in row["attempts"]] == [dead_mirror_url + row["name"]]


def test_download_table_shows_file_bytes_checksum_and_mirror(
    tmp_path: Path, mnist_server: str, dead_mirror_url: str
) -> None:
    result = run(
        "download",
        "mnist",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        mnist_server,
        "--data-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "train-images-idx3-ubyte.gz" in result.stdout and "9,719,438" in result.stdout
    assert "sha256 ok" in result.stdout and mnist_server in result.stdout
    assert result.stdout.count(" downloaded ") == 4
    last = result.stdout.splitlines()[-1]
    assert last == f"{dead_mirror_url} failed for 4 files (connection refused)"


def test_every_mirror_failing_is_one_line_listing_each_url(
    tmp_path: Path, dead_mirror_url: str, serve_folder: Callable[[Path], Any]
) -> None:
    empty = serve_folder(tmp_path)  # answers 404 for every file
    result = run(
        "download",
        "mnist",
        "--no-default-mirrors",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        empty.url,
        "--data-dir",
        tmp_path / "d",
    )
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "train-images-idx3-ubyte.gz" in line and dead_mirror_url in line and empty.url in line
    assert "connection refused" in line and "404" in line
    assert list((tmp_path / "d" / "mnist").iterdir()) == []  # nothing partial left behind


def test_data_dir_from_environment(tmp_path: Path, mnist_server: str) -> None:
    result = run(
        "download",
        "mnist",
        "--mirror",
        mnist_server,
        env={"FCGRAD_DATA_DIR": str(tmp_path / "env")},
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "env" / "mnist").glob("*.gz"))) == 4
