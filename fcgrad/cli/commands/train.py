"""`fcgrad train`: mini-batch SGD with a live epoch table, a checkpoint with --save, and
Ctrl-C that stops at a step boundary, saves, and says how to resume."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.markup import escape
from typer._click.core import ParameterSource  # typer's own click
from typer._click.exceptions import UsageError

from fcgrad import interrupts
from fcgrad.cli import options as opt
from fcgrad.cli import plots
from fcgrad.cli.app import emit, err, out, say, say_drawn, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.data.prepare import Source
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.errors import WriteError, one_line
from fcgrad.fileio import short_path, writable_target
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.optimizers import Optimizer
from fcgrad.training.train import (
    Checkpoint,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
    check_memory,
    train,
)

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@user_errors
def train_cmd(
    ctx: typer.Context,
    strategy: Annotated[
        opt.Strategy, typer.Option("--strategy", help="How gradients are computed.")
    ] = opt.TAPE,
    loss: opt.LossOpt = Loss.cross_entropy,
    hidden: opt.Hidden = [50],  # noqa: B006 (typer reads the default)
    activation: opt.ActivationOpt = Activation.relu,
    optimizer: Annotated[
        Optimizer,
        typer.Option(
            "--optimizer",
            help="sgd: p -= lr g (the lesson's); momentum: heavy ball with --momentum; "
            "adam: Kingma and Ba 2015 (b1 0.9, b2 0.999, eps 1e-8).",
        ),
    ] = Optimizer.sgd,
    momentum: Annotated[
        float,
        typer.Option("--momentum", help="Momentum's mu, in [0, 1) (with --optimizer momentum)."),
    ] = 0.9,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="Passes over the 60,000 training images (default 5); with --resume, the "
            "run's new total.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per SGD step.")] = 64,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="Learning rate (default: sgd 0.1 for cross-entropy and 0.01 for mse; "
            "momentum those times 1 - mu; adam 0.001).",
            show_default=False,
        ),
    ] = None,
    seed: opt.Seed = 0,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            help="Write a checkpoint (weights, optimizer state, epoch, RNG state, "
            "statistics, configuration) to this .npz file; also on Ctrl-C.",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run saved in this checkpoint, with its configuration (--epochs "
            "may extend it), saving back to it unless --save says elsewhere.",
            exists=True,
            show_default=False,
        ),
    ] = None,
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    plot: opt.Plot = None,
    threads: opt.Threads = None,
    json_: opt.Json = False,
) -> None:
    """Train the net with mini-batches (SGD, momentum or Adam); report loss and accuracy on the
    10,000 valid images."""

    from fcgrad.cli import render

    checkpoint = Checkpoint.load(resume) if resume is not None else None
    fresh = TrainConfig(
        opt.chosen(strategy),
        loss,
        tuple(hidden),
        5 if epochs is None else epochs,
        batch_size,
        lr,  # type: ignore[arg-type]  # None: the optimizer's default for the loss
        seed,
        activation,
        optimizer,
        momentum,
    )
    if checkpoint is not None:
        _refuse_on_resume(ctx)
        save = save or resume
    elif optimizer is not Optimizer.momentum and _given(ctx, "momentum"):
        raise UsageError(
            f"--momentum goes with --optimizer momentum ({optimizer.value} has no momentum)", ctx
        )
    config = checkpoint.resumed(epochs) if checkpoint else fresh
    config.validate()
    check_memory(config)  # before the data is loaded and the display drawn
    if threads is None and checkpoint is not None:
        threads = checkpoint.threads  # the run's own: another count changes last bits
    policy = ThreadPolicy.fixed_at(threads)
    if plot is not None:
        plots.pyplot()  # matplotlib is there, and the folder can be made: fail now,
        plots.folder(plot)  # not after training
    if save is not None:
        writable_target(save)  # fail now, not after training
    src = source(data_dir, mirrors, no_default_mirrors, no_download)
    data, stats = _data_for(checkpoint, resume, src, json_)
    with _stop_on_signals() as stop:
        try:
            result = _train_shown(data, config, checkpoint, stop, stats, policy, json_)
        except TrainingInterrupted as e:
            _interrupted(e.checkpoint, save, src, stop.signum or signal.SIGINT)
        if save is not None:
            _save_finished(result.checkpoint, save, src, stop)
        drawn = [str(p) for p in plots.training(result, plot)] if plot is not None else []
        emit(result, json_, render.train_summary, saved=str(save) if save else None, plots=drawn)
        if save is not None and not json_:
            say(out, f"saved the checkpoint to {escape(str(save))}")
        say_drawn(drawn, json_)
        if result.at_chance:
            say(err, render.chance_warning(result))
    if stop.signum is not None:  # it came after the last step: the run is complete
        _stopped_after_the_run(save, stop.signum)


# What a checkpoint fixes: its configuration but the epochs, which --resume may extend.
# (Each option is named as the TrainConfig field it sets.)
FIXED_BY_CHECKPOINT = {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs"}


def _refuse_on_resume(ctx: typer.Context) -> None:
    """A usage error naming the options given with --resume that the checkpoint fixes."""
    given = [
        p.opts[0]
        for p in ctx.command.params
        if p.name in FIXED_BY_CHECKPOINT and _given(ctx, p.name)
    ]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot change the run resumed from "
            f"{short_path(ctx.params.get('resume'))}: the checkpoint fixes its "
            "configuration (--epochs may extend it)",
            ctx,
        )


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option of parameter `name` was given on the command line."""
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _data_for(
    checkpoint: Checkpoint | None, resume: Path | None, src: Source, quiet: bool
) -> tuple[Data, tuple[float, float]]:
    """The normalized data and its training (mean, std); a checkpoint must have been trained
    on data with the same statistics."""
    x_train, y_train, x_valid, y_valid, stats, _ = prepared(src, quiet)
    if checkpoint is not None:
        checkpoint.check_statistics(stats.mean, stats.std, resume, src.data_dir)
        checkpoint.check_position(x_train.shape[0], resume)  # before the display is drawn
    return (x_train, y_train, x_valid, y_valid), (stats.mean, stats.std)


def _train_shown(
    data: Data,
    config: TrainConfig,
    checkpoint: Checkpoint | None,
    stop: Callable[[], bool],
    stats: tuple[float, float],
    threads: ThreadPolicy,
    quiet: bool,
) -> TrainResult:
    """train(), with the live epoch table unless `quiet`."""
    from fcgrad.cli import render

    run = functools.partial(
        train, *data, config, resume=checkpoint, should_stop=stop, stats=stats, threads=threads
    )
    if quiet:
        return run()
    net = config.net(data[0].shape[1])
    title = (
        f"Training {net.describe()}; {config.strategy}, {config.optimizer.value}, lr {config.lr:g}"
    )
    with render.train_display(out, title, config.epochs) as display:
        return run(display)


# Signals that stop a run as Ctrl-C does: `kill`, docker stop, systemd and batch schedulers
# send SIGTERM; a closed terminal sends SIGHUP.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopAsked:
    """Whether a stop signal came, and which (its number)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_StopAsked]:
    """While training and until the command is done: a SIGINT (Ctrl-C), SIGTERM or SIGHUP
    asks training to stop at the next step boundary, a few milliseconds away (then it
    saves and exits 128 + the signal's number). More of them change nothing: a second
    Ctrl-C that interrupted at once lost the run, which the next step boundary would
    have saved (Ctrl-\\ still quits at once). A signal ignored when fcgrad started (`nohup`
    ignores SIGHUP) stays ignored."""
    asked = _StopAsked()

    def handler(signum: int, frame: Any) -> None:
        asked.signum = asked.signum or signum
        interrupts.note(signum)  # so that the command's own handlers, once back, are quiet

    previous = {
        s: signal.signal(s, handler)
        for s in STOP_SIGNALS
        if signal.getsignal(s) is not signal.SIG_IGN
    }
    done = False
    try:
        yield asked
        done = True  # the command's work (training, the save, the summary) is done
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_IGN if done and interrupts.is_ours(h) else h)


def _data_dir_flag() -> str:
    """' --data-dir X' as given on the command line, for a hint the user can paste."""
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--data-dir" and i + 1 < len(argv):
            return f" --data-dir {argv[i + 1]}"
        if a.startswith("--data-dir="):
            return f" {a}"
    return ""


def _save_finished(checkpoint: Checkpoint, save: Path, src: Source, stop: _StopAsked) -> None:
    """Save the finished run; a save that failed (rescued, or lost) after a stop signal
    came says so on the stopped line, with its exit code, instead of dropping the signal."""
    try:
        checkpoint.save(save, rescue=_rescue_folders(src))
    except WriteError as e:
        if stop.signum is None:
            raise
        _stopped_after_the_run(None, stop.signum, f"; {escape(one_line(str(e)))}")


def _stopped_after_the_run(save: Path | None, signum: int, saved: str = "") -> NoReturn:
    """A stop signal came once the last step was taken (during the last evaluation, the
    save or the summary): the run is complete; say so, and where it was saved (`saved`
    when it could not be saved there), and exit 128 + its number as a stopped run does."""
    name = signal.Signals(signum).name
    saved = saved or (f"; saved to {escape(str(save))}" if save is not None else "")
    say(err, f"stopped ({name}) after the last epoch{saved}")
    raise typer.Exit(128 + signum)


def _rescue_folders(src: Source) -> list[Path]:
    """Where a checkpoint that cannot be written goes instead, after the temp folder."""
    return [src.data_dir, Path.home()]


def _interrupted(
    checkpoint: Checkpoint, save: Path | None, src: Source, signum: int = signal.SIGINT
) -> NoReturn:
    """Save what there is (with --save; elsewhere when that fails), say how to resume, and
    exit 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    code = 128 + signum
    how = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
    where = f"interrupted{how} at epoch {checkpoint.epoch}, step {checkpoint.step}"
    if save is None:
        say(err, f"{where}; nothing saved (use --save FILE to be able to resume)")
        raise typer.Exit(code)
    try:
        saved = str(checkpoint.save(save, rescue=_rescue_folders(src)))
    except WriteError as e:
        where = f"{where}; {escape(one_line(str(e)))}"
        if e.rescued is None:
            say(err, where)
            raise typer.Exit(code) from None
        saved = e.rescued
    else:
        where = f"{where}; saved to {escape(saved)}"
    say(
        err,
        f"{where}; resume with: fcgrad train --resume {escape(saved)}{escape(_data_dir_flag())}",
    )
    raise typer.Exit(code)
