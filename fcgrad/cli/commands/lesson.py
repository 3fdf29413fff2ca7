"""`fcgrad lesson`: the lesson end to end on the real MNIST, as short sections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fcgrad.cli import options as opt
from fcgrad.cli import plots, render_lesson
from fcgrad.cli.app import emit, say_drawn, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.lesson import run_lesson
from fcgrad.lesson.sections import init_activations


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
    plot: opt.Plot = None,
    json_: opt.Json = False,
) -> None:
    """The lesson end to end: normalization, n m c, init statistics, the initial MSE, the
    three strategies' gradients, call traces, scalar examples and timings; every check
    pass or FAIL (exit 1 if one fails)."""
    if plot is not None:
        plots.pyplot()  # matplotlib is there: fail before the work
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
    drawn = []
    if plot is not None:
        acts = init_activations(data.x_valid, seed)
        drawn = [str(p) for p in plots.init_histograms(acts, plot)]
    emit(result, json_, render_lesson.lesson, plots=drawn)
    say_drawn(drawn, json_)
    if not result.ok:
        raise typer.Exit(1)
