"""`fcgrad download` and `fcgrad normalize`, and the loading of MNIST that the other
commands share (`source`, `prepared`): the core's `fcgrad.data.prepare`, shown on stderr."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape

from fcgrad.cli.app import emit, err, out, say, user_errors
from fcgrad.cli.options import DataDir, Dataset, Json, Mirrors, NoDefaultMirrors, NoDownload
from fcgrad.data import DownloadProgress
from fcgrad.data.mnist import check_data_dir
from fcgrad.data.prepare import Prepared, Source, fetch_mnist, prepare_mnist
from fcgrad.fileio import atomic_path, short_path, writable_target


def source(
    data_dir: Path, mirrors: list[str] | None, no_default: bool, no_download: bool = False
) -> Source:
    """The core's `Source` for a command's data options (ConfigError for a data dir the
    system cannot look at)."""
    check_data_dir(data_dir)
    return Source(data_dir, tuple(mirrors or ()), not no_default, not no_download)


def _bar() -> AbstractContextManager[DownloadProgress]:
    """The download bar, live on stderr."""
    from fcgrad.cli import render

    return render.download_bar(err)


def _fetching_first(data_dir: Path) -> None:
    say(
        err,
        f"MNIST is not in {escape(short_path(data_dir))}; downloading it first "
        "(--no-download to refuse)",
    )


def prepared(src: Source, quiet: bool) -> Prepared:
    """MNIST loaded and normalized; when it is fetched first, that is said and shown on
    stderr unless `quiet`."""
    if quiet:
        return prepare_mnist(src)
    return prepare_mnist(src, display=_bar, before_fetch=_fetching_first)


@user_errors
def download(
    dataset: Annotated[
        Dataset, typer.Argument(help="The data set to fetch: mnist.", metavar="NAME")
    ],
    data_dir: DataDir = Path("data"),
    mirrors: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if verified files are here.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait to connect, and for each read.")
    ] = 30.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            help="Further attempts on the same mirror after a transient failure "
            "(a reset, a timeout, HTTP 5xx) before the next mirror.",
        ),
    ] = 2,
    backoff: Annotated[
        float,
        typer.Option(
            "--backoff",
            help="Seconds before the first retry, doubled for each next one "
            "(at most 5 s of waiting per run).",
        ),
    ] = 0.5,
    json_: Json = False,
) -> None:
    """Fetch the four MNIST IDX files, verify their SHA-256, and keep them in DATA_DIR/mnist."""
    from fcgrad.cli import render

    report = fetch_mnist(
        source(data_dir, mirrors, no_default_mirrors),
        force=force,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        display=None if json_ else _bar,
    )
    emit(report, json_, render.download_table)


@user_errors
def normalize(
    data_dir: DataDir = Path("data"),
    mirrors: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    no_download: NoDownload = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Save the normalized arrays and the statistics to this .npz file.",
        ),
    ] = None,
    json_: Json = False,
) -> None:
    """Normalize both sets with the training mean and std, and run the lesson's checks."""
    from fcgrad.cli import render

    if output is not None:
        writable_target(output)
    data = prepared(source(data_dir, mirrors, no_default_mirrors, no_download), json_)
    if output is not None:
        _save(output, data)
    emit(data.report, json_, render.normalize_table, output=str(output) if output else None)
    if output is not None and not json_:
        say(out, f"saved normalized arrays and statistics to {escape(str(output))}")
    if not data.report.ok:
        raise typer.Exit(1)


def _save(output: Path, data: Prepared) -> None:
    """The normalized arrays and the training mean and std, as one .npz written atomically."""
    with atomic_path(output, suffix=".npz") as tmp:
        np.savez(
            tmp,
            x_train=data.x_train,
            y_train=data.y_train,
            x_valid=data.x_valid,
            y_valid=data.y_valid,
            mean=data.stats.mean,
            std=data.stats.std,
        )
