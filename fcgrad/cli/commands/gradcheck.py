"""`fcgrad gradcheck`: the three strategies' gradients of the net against each other and
float64 central differences, or a user's own function's gradient (--function)."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from fcgrad.checking.check_grads import PrecisionWarning, check_grads
from fcgrad.checking.net_gradcheck import GradCheckConfig, gradcheck
from fcgrad.cli import options as opt
from fcgrad.cli import userfn
from fcgrad.cli.app import emit, err, say, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.errors import ConfigError, one_line
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss

YOURS = "Your own function"


@user_errors
def gradcheck_cmd(
    strategies: opt.StrategySet = [opt.ALL],  # noqa: B006
    loss: opt.LossOpt = Loss.mse,
    hidden: opt.Hidden = [50],  # noqa: B006
    activation: opt.ActivationOpt = Activation.relu,
    rows: opt.Rows = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Coordinates per array checked by central differences.")
    ] = 20,
    fd_rows: Annotated[
        int, typer.Option("--fd-rows", help="Rows used for the float64 finite differences.")
    ] = 1000,
    seed: opt.Seed = 0,
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    json_: opt.Json = False,
    function: Annotated[
        str | None,
        typer.Option(
            "--function",
            help="Check your own scalar function instead: MODULE:NAME or FILE.py:NAME.",
            rich_help_panel=YOURS,
            show_default=False,
        ),
    ] = None,
    grad: Annotated[
        str | None,
        typer.Option(
            "--grad",
            help="Its hand-written gradient, MODULE:NAME (default: the tape).",
            rich_help_panel=YOURS,
            show_default=False,
        ),
    ] = None,
    inputs: Annotated[
        Path | None,
        typer.Option(
            "--inputs",
            help="Its arguments: the arrays of an .npz file, in order.",
            rich_help_panel=YOURS,
            exists=True,
            show_default=False,
        ),
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape",
            metavar="D1,D2,...",
            help="Or random arguments of these shapes, e.g. --shape 3,4 "
            "--shape 4 (seeded by --seed).",
            rich_help_panel=YOURS,
            show_default=False,
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Check every coordinate, not --samples of them.", rich_help_panel=YOURS
        ),
    ] = False,
    directions: Annotated[
        int,
        typer.Option(
            "--directions", help="Random directions checked (grad . u).", rich_help_panel=YOURS
        ),
    ] = 3,
    threads: opt.Threads = None,
) -> None:
    """Compare each strategy's gradients with the others' and with float64 central differences,
    or check your own function's gradient with --function."""
    from fcgrad.cli import render, render_check

    if function is None and (grad or inputs or shape or full or directions != 3):
        raise ConfigError("--grad, --inputs, --shape, --full and --directions go with --function")
    if function is not None:
        report = _check_function(
            function, grad, inputs, shape or [], samples, full, directions, seed
        )
        emit(report, json_, render_check.check_report)
        if not report.ok:
            raise typer.Exit(1)
        return
    config = GradCheckConfig(
        opt.strategy_names(strategies),
        loss,
        tuple(hidden),
        rows,
        samples,
        fd_rows,
        seed,
        activation,
    )
    config.validate()
    policy = ThreadPolicy.fixed_at(threads)
    x_train, y_train, *_ = prepared(
        source(data_dir, mirrors, no_default_mirrors, no_download), json_
    )
    with render.steps_bar(err, enabled=not json_) as bar:
        result = gradcheck(x_train, y_train, config, bar, policy)
    emit(result, json_, render.gradcheck_table)
    if not result.ok:
        raise typer.Exit(1)


def _check_function(
    function: str,
    grad: str | None,
    inputs: Path | None,
    shapes: list[str],
    samples: int,
    full: bool,
    directions: int,
    seed: int,
) -> Any:
    """check_grads on a user's function; float32 promotion is noted on stderr, not warned.
    What the user's code prints (importing it, calling it) goes to stderr, so that stdout
    holds only the report (one JSON object with --json)."""
    with contextlib.redirect_stdout(sys.stderr):
        f = userfn.guarded(userfn.load_object(function), function)
        g = userfn.guarded(userfn.load_object(grad, "--grad"), grad) if grad else None
        args = userfn.make_inputs(inputs, shapes, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PrecisionWarning)
            report = check_grads(
                f, args, grad=g, samples=samples, full=full, directions=directions, seed=seed
            )
    for w in caught:
        say(err, f"note: {escape(one_line(str(w.message)))}")
    return report
