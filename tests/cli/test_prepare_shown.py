"""The core fetches and prepares MNIST without printing (`fcgrad.data.prepare`); the CLI
passes the rendering: the "downloading it first" line and the download bar, on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fcgrad.cli.app import app
from fcgrad.data.prepare import Source, prepare_mnist

runner = CliRunner()


class Recorded:
    """A DownloadProgress that remembers what it was told."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.advanced = 0
        self.ended: list[bool] = []

    def start(self, name: str, total_bytes: int | None, source: str) -> None:
        self.started.append(name)

    def advance(self, n_bytes: int) -> None:
        self.advanced += n_bytes

    def end(self, ok: bool) -> None:
        self.ended.append(ok)


def test_prepare_mnist_prints_nothing_and_reports_through_its_callbacks(
    tmp_path: Path, mnist_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    progress, opened, told = Recorded(), [], []

    @contextlib.contextmanager
    def display() -> Iterator[Recorded]:
        opened.append(True)
        yield progress

    src = Source(tmp_path, (mnist_server,), default_mirrors=False)
    data = prepare_mnist(src, display=display, before_fetch=told.append)
    assert capsys.readouterr() == ("", "")
    assert told == [tmp_path] and opened == [True]
    assert len(progress.started) == 4 and progress.ended == [True] * 4 and progress.advanced > 0
    assert data.x_train.shape == (60000, 784) and data.report.ok
    assert abs(float(data.x_train.mean())) < 1e-3

    again = prepare_mnist(src, display=display, before_fetch=told.append)  # nothing to fetch
    assert told == [tmp_path] and opened == [True] and again.x_valid.shape == (10000, 784)


def test_the_cli_says_that_it_downloads_mnist_first(tmp_path: Path, mnist_server: str) -> None:
    args = ("normalize", "--data-dir", str(tmp_path), "--mirror", mnist_server)
    result = runner.invoke(app, [*args, "--no-default-mirrors"])
    assert result.exit_code == 0, result.output
    said = f"MNIST is not in {tmp_path}; downloading it first (--no-download to refuse)"
    assert said in result.stderr.replace("\n", "")
    assert "0.13066" in result.stdout
