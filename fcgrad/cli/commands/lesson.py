"""`fcgrad lesson`: the lesson end to end on the real MNIST, as short sections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fcgrad.cli import options as opt
from fcgrad.cli import render_lesson
from fcgrad.cli.app import emit, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.lesson import run_lesson


@user_errors
def lesson_cmd(
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat", min=1, help="Timed runs of each strategy's forward+backward pass."
        ),
    ] = 5,
    seed: opt.Seed = 0,
    json_: opt.Json = False,
) -> None:
    """The lesson end to end: normalization, n m c, init statistics, the initial MSE, the
    three strategies' gradients, call traces, scalar examples and timings; every check
    pass or FAIL (exit 1 if one fails)."""
    data = prepared(source(data_dir, mirrors, no_default_mirrors, no_download), json_)
    result = run_lesson(
        data.x_train,
        data.y_train,
        data.x_valid,
        data.y_valid,
        data.report,
        seed=seed,
        repeat=repeat,
    )
    emit(result, json_, render_lesson.lesson)
    if not result.ok:
        raise typer.Exit(1)
