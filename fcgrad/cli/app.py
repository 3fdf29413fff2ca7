"""The `fcgrad` command line: a thin Typer layer over the pure core.

Each command parses options, calls the core, and renders the result with
`fcgrad.cli.render` (or prints one JSON object with `--json`). A `FcgradError` from
the core becomes one red line on stderr and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer's own click

from fcgrad import strategies
from fcgrad.bench.timing import BenchConfig, bench
from fcgrad.checking.check_grads import PrecisionWarning, check_grads
from fcgrad.checking.net_gradcheck import GradCheckConfig, gradcheck
from fcgrad.cli import userfn
from fcgrad.data import (
    DATA_DIR_ENV,
    DEFAULT_MNIST_MIRRORS,
    MIRRORS_ENV,
    download_mnist,
    load_mnist,
    missing_mnist_files,
    resolve_mirrors,
)
from fcgrad.data.normalize import normalize_pair
from fcgrad.errors import ConfigError, FcgradError
from fcgrad.fileio import atomic_path, writable_target
from fcgrad.jsonio import finite
from fcgrad.nn.losses import Loss
from fcgrad.training.train import Checkpoint, TrainConfig, TrainingInterrupted, TrainResult, train


class _OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad value, a missing file) as one line on stderr and exit 2, like the
    core's errors (exit 1), instead of a framed usage box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        call = {
            "args": args,
            "prog_name": prog_name,
            "complete_var": complete_var,
            "windows_expand_args": windows_expand_args,
            **extra,
        }
        if not standalone_mode:
            return super().main(**call, standalone_mode=False)
        try:
            code = super().main(**call, standalone_mode=False)
        except NoArgsIsHelpError as e:  # `fcgrad` alone: the help, as usual
            print(e.ctx.get_help() if e.ctx else e.format_message())
            sys.exit(0)
        except ClickException as e:
            ctx = getattr(e, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx else ""
            err.print(
                f"[bold red]error:[/] {escape(e.format_message())}{where}",
                soft_wrap=True,
                highlight=False,
            )
            sys.exit(e.exit_code)
        except typer.Abort:
            err.print("interrupted", highlight=False)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Train a fully connected net on MNIST and verify its gradients three ways.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
out = Console()
err = Console(stderr=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 140  # logs and pipes: room for the gradcheck table instead of rich's 80

F = TypeVar("F", bound=Callable[..., Any])
YOURS = "Your own function"


class Dataset(str, enum.Enum):
    mnist = "mnist"


class Strategy(str, enum.Enum):
    manual = "manual"
    vwc = "vwc"
    tape = "tape"


class StrategyOrAll(str, enum.Enum):
    manual = "manual"
    vwc = "vwc"
    tape = "tape"
    all = "all"


# ----------------------------------------------------------------------------- shared options

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Data folder; MNIST lives in DATA_DIR/mnist.",
        file_okay=False,
    ),
]
Mirrors = Annotated[
    list[str] | None,
    typer.Option(
        "--mirror",
        help=f"MNIST mirror URL or local folder, tried first (repeatable; also ${MIRRORS_ENV}).",
        show_default=False,
    ),
]
NoDefaultMirrors = Annotated[
    bool,
    typer.Option(
        "--no-default-mirrors",
        help="Try only --mirror and $FCGRAD_MNIST_MIRRORS, not the built-in internet mirrors.",
    ),
]
NoDownload = Annotated[
    bool,
    typer.Option("--no-download", help="Fail instead of downloading MNIST when it is missing."),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")
]
Seed = Annotated[
    int,
    typer.Option("--seed", min=0, help="Seed of the numpy Generator (init, sampling, shuffles)."),
]
LossOpt = Annotated[
    Loss,
    typer.Option(
        "--loss", help="mse: one output, the digit as target; cross-entropy: ten outputs."
    ),
]
Hidden = Annotated[
    list[int], typer.Option("--hidden", help="Hidden layer size (repeat for a deeper net).")
]
Rows = Annotated[
    int | None,
    typer.Option(
        "--rows", help="Use the first N training rows (default: all 60,000).", show_default=False
    ),
]
StrategySet = Annotated[
    list[StrategyOrAll], typer.Option("--strategy", help="Strategy to run (repeatable), or all.")
]


def user_errors(fn: F) -> F:
    """Turn a FcgradError from the core into one red line on stderr and exit 1, and Ctrl-C
    into one line and exit 130 (files are written atomically, so nothing is half-written)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FcgradError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:  # outside training (which stops at a step boundary itself)
            err.print(
                "interrupted; files are renamed into place only when complete (a partial "
                "download stays as a .part file for the next run)",
                highlight=False,
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _emit(result: Any, json_: bool, draw: Callable[[Any], Any], **extra: object) -> None:
    """Print `result` as one JSON object (its `to_dict()` plus `extra`) or drawn by rich."""
    if json_:
        _print_json({**result.to_dict(), **extra})
    else:
        out.print(draw(result))


def _print_json(obj: object) -> None:
    """One JSON object on stdout; NaN and infinities (not JSON) become null."""
    print(json.dumps(finite(obj), indent=2, default=_json_default, allow_nan=False))


def _json_default(o: object) -> object:
    if isinstance(o, (np.generic, np.ndarray)):
        return o.tolist()
    if isinstance(o, (Path, enum.Enum)):
        return str(o.value if isinstance(o, enum.Enum) else o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _names(choices: list[StrategyOrAll]) -> tuple[str, ...]:
    chosen = {c.value for c in choices}
    return (
        strategies.NAMES
        if "all" in chosen or not chosen
        else tuple(n for n in strategies.NAMES if n in chosen)
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """Where MNIST lives (`data_dir`) and where to fetch it from when it is not there."""

    data_dir: Path
    mirrors: tuple[str, ...] = ()
    default_mirrors: bool = True
    download: bool = True

    @classmethod
    def of(
        cls, data_dir: Path, mirror: list[str] | None, no_default: bool, no_download: bool = False
    ) -> Source:
        return cls(data_dir, tuple(mirror or ()), not no_default, not no_download)


def _download(src: Source, *, force: bool, quiet: bool, **settings: Any) -> Any:
    """download_mnist from the source's mirrors; `settings`: timeout, retries, backoff."""
    from fcgrad.cli import render

    defaults = DEFAULT_MNIST_MIRRORS if src.default_mirrors else ()
    sources = resolve_mirrors(src.mirrors, os.environ, defaults=defaults)
    if quiet:
        return download_mnist(src.data_dir, sources, force=force, **settings)
    with render.download_bar(err) as bar:
        return download_mnist(src.data_dir, sources, force=force, progress=bar, **settings)


def _normalized(src: Source, quiet: bool) -> Any:
    """Load MNIST (downloading it first if allowed) and normalize it in place."""
    if missing_mnist_files(src.data_dir) and src.download:
        if not quiet:
            err.print(
                f"MNIST is not in {src.data_dir}; downloading it first (--no-download to refuse)"
            )
        _download(src, force=False, quiet=quiet)
    x_train, y_train, x_valid, y_valid = load_mnist(src.data_dir)
    x_train, x_valid, train_stats, report = normalize_pair(x_train, x_valid, inplace=True)
    return x_train, y_train, x_valid, y_valid, train_stats, report


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
    """check_grads on a user's function; float32 promotion is noted on stderr, not warned."""
    f = userfn.guarded(userfn.load_object(function), function)
    g = userfn.guarded(userfn.load_object(grad, "--grad"), grad) if grad else None
    args = userfn.make_inputs(inputs, shapes, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrecisionWarning)
        report = check_grads(
            f, args, grad=g, samples=samples, full=full, directions=directions, seed=seed
        )
    for w in caught:
        err.print(f"note: {escape(str(w.message))}", soft_wrap=True, highlight=False)
    return report


# ----------------------------------------------------------------------------- commands


@app.command()
@user_errors
def download(
    dataset: Annotated[Dataset, typer.Argument(help="The data set to fetch.")],
    data_dir: DataDir = Path("data"),
    mirror: Mirrors = None,
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

    report = _download(
        Source.of(data_dir, mirror, no_default_mirrors),
        force=force,
        quiet=json_,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
    )
    _emit(report, json_, render.download_table)


@app.command()
@user_errors
def normalize(
    data_dir: DataDir = Path("data"),
    mirror: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    no_download: NoDownload = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Save the normalized arrays and the statistics to this .npz file.",
            dir_okay=False,
        ),
    ] = None,
    json_: Json = False,
) -> None:
    """Normalize both sets with the training mean and std, and run the lesson's checks."""
    from fcgrad.cli import render

    if output is not None:
        writable_target(output)
    x_train, y_train, x_valid, y_valid, train_stats, report = _normalized(
        Source.of(data_dir, mirror, no_default_mirrors, no_download), json_
    )
    if output is not None:
        with atomic_path(output, suffix=".npz") as tmp:
            np.savez(
                tmp,
                x_train=x_train,
                y_train=y_train,
                x_valid=x_valid,
                y_valid=y_valid,
                mean=train_stats.mean,
                std=train_stats.std,
            )
    _emit(report, json_, render.normalize_table, output=str(output) if output else None)
    if output is not None and not json_:
        out.print(f"saved normalized arrays and statistics to {output}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("train")
@user_errors
def train_cmd(
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="How gradients are computed.")
    ] = Strategy.tape,
    loss: LossOpt = Loss.cross_entropy,
    hidden: Hidden = [50],  # noqa: B006 (typer reads the default)
    epochs: Annotated[
        int, typer.Option("--epochs", help="Passes over the 60,000 training images.")
    ] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per SGD step.")] = 64,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="SGD learning rate (default: 0.1 for cross-entropy, 0.01 for mse).",
            show_default=False,
        ),
    ] = None,
    seed: Seed = 0,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            help="Write a checkpoint (weights, epoch, RNG state, statistics, "
            "configuration) to this .npz file; also on Ctrl-C.",
            dir_okay=False,
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run saved in this checkpoint (its configuration is used).",
            dir_okay=False,
            exists=True,
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = Path("data"),
    mirror: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    no_download: NoDownload = False,
    json_: Json = False,
) -> None:
    """Train the net with mini-batch SGD; report loss and accuracy on the 10,000 valid images."""

    from fcgrad.cli import render

    checkpoint = Checkpoint.load(resume) if resume is not None else None
    rate = lr if lr is not None else loss.default_lr
    fresh = TrainConfig(strategy.value, loss, tuple(hidden), epochs, batch_size, rate, seed)
    config = checkpoint.config if checkpoint else fresh
    config.validate()
    if save is not None:
        writable_target(save)  # fail now, not after training
    x_train, y_train, x_valid, y_valid, stats, _ = _normalized(
        Source.of(data_dir, mirror, no_default_mirrors, no_download), json_
    )
    if checkpoint and not np.allclose((checkpoint.mean, checkpoint.std), (stats.mean, stats.std)):
        raise ConfigError(f"{resume} was trained on data with other statistics than {data_dir}")
    data = (x_train, y_train, x_valid, y_valid)
    try:
        with _stop_on_sigint() as stop:
            result = _train_shown(data, config, checkpoint, stop, (stats.mean, stats.std), json_)
    except TrainingInterrupted as e:
        _interrupted(e.checkpoint, save)
    if save is not None:
        result.checkpoint.save(save)
    _emit(result, json_, render.train_summary, saved=str(save) if save else None)
    if save is not None and not json_:
        out.print(f"saved the checkpoint to {save}")


def _train_shown(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    config: TrainConfig,
    checkpoint: Checkpoint | None,
    stop: Callable[[], bool],
    stats: tuple[float, float],
    quiet: bool,
) -> TrainResult:
    """train(), with the live epoch table unless `quiet`."""
    from fcgrad.cli import render

    if quiet:
        return train(*data, config, resume=checkpoint, should_stop=stop, stats=stats)
    sizes = "-".join(map(str, (784, *config.hidden, config.loss.n_out)))
    title = f"Training {sizes} with {config.strategy}, {config.loss.value}"
    with render.train_display(out, title) as display:
        return train(*data, config, display, resume=checkpoint, should_stop=stop, stats=stats)


@contextlib.contextmanager
def _stop_on_sigint() -> Iterator[Callable[[], bool]]:
    """While training: the first Ctrl-C asks it to stop at the next step boundary; a second
    one interrupts at once."""
    asked = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield asked.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _data_dir_flag() -> str:
    """' --data-dir X' as given on the command line, for a hint the user can paste."""
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--data-dir" and i + 1 < len(argv):
            return f" --data-dir {argv[i + 1]}"
        if a.startswith("--data-dir="):
            return f" {a}"
    return ""


def _interrupted(checkpoint: Checkpoint, save: Path | None) -> NoReturn:
    """Save what there is (with --save), say how to resume, and exit 130 (as after SIGINT)."""
    where = f"epoch {checkpoint.epoch}, step {checkpoint.step}"
    if save is not None:
        checkpoint.save(save)
        err.print(
            f"interrupted at {where}; saved to {save}; resume with: "
            f"fcgrad train --resume {save}{_data_dir_flag()}",
            soft_wrap=True,
            highlight=False,
        )
    else:
        err.print(
            f"interrupted at {where}; nothing saved (use --save FILE to be able to resume)",
            soft_wrap=True,
            highlight=False,
        )
    raise typer.Exit(130)


@app.command("gradcheck")
@user_errors
def gradcheck_cmd(
    strategy: StrategySet = [StrategyOrAll.all],  # noqa: B006
    loss: LossOpt = Loss.mse,
    hidden: Hidden = [50],  # noqa: B006
    rows: Rows = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Coordinates per array checked by central differences.")
    ] = 20,
    fd_rows: Annotated[
        int, typer.Option("--fd-rows", help="Rows used for the float64 finite differences.")
    ] = 1000,
    seed: Seed = 0,
    data_dir: DataDir = Path("data"),
    mirror: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    no_download: NoDownload = False,
    json_: Json = False,
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
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape",
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
) -> None:
    """Compare each strategy's gradients with the others' and with float64 central differences,
    or check your own function's gradient with --function."""
    from fcgrad.cli import render

    if function is None and (grad or inputs or shape or full or directions != 3):
        raise ConfigError("--grad, --inputs, --shape, --full and --directions go with --function")
    if function is not None:
        report = _check_function(
            function, grad, inputs, shape or [], samples, full, directions, seed
        )
        _emit(report, json_, render.check_report)
        if not report.ok:
            raise typer.Exit(1)
        return
    config = GradCheckConfig(_names(strategy), loss, tuple(hidden), rows, samples, fd_rows, seed)
    config.validate()
    x_train, y_train, *_ = _normalized(
        Source.of(data_dir, mirror, no_default_mirrors, no_download), json_
    )
    result = gradcheck(x_train, y_train, config)
    _emit(result, json_, render.gradcheck_table)
    if not result.ok:
        raise typer.Exit(1)


@app.command("bench")
@user_errors
def bench_cmd(
    repeat: Annotated[int, typer.Option("--repeat", help="Timed runs per strategy and pass.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 1,
    rows: Rows = None,
    strategy: StrategySet = [StrategyOrAll.all],  # noqa: B006
    loss: LossOpt = Loss.mse,
    hidden: Hidden = [50],  # noqa: B006
    seed: Seed = 0,
    data_dir: DataDir = Path("data"),
    mirror: Mirrors = None,
    no_default_mirrors: NoDefaultMirrors = False,
    no_download: NoDownload = False,
    json_: Json = False,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="Also time these libraries, e.g. torch,jax,autograd "
            "(pip install 'fcgrad\\[peers]').",
            show_default=False,
        ),
    ] = None,
    train_epoch: Annotated[
        bool,
        typer.Option(
            "--train-epoch",
            help="Also time training at --batch-size: single steps, and one SGD epoch "
            "(also torch's, with --compare torch).",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Rows per step for --train-epoch.")
    ] = 64,
) -> None:
    """Time each strategy's forward and forward+backward pass on the normalized training set."""
    from fcgrad.cli import render

    names = tuple(p.strip() for c in compare or [] for p in c.split(",") if p.strip())
    config = BenchConfig(
        _names(strategy),
        loss,
        tuple(hidden),
        repeat,
        warmup,
        rows,
        seed,
        names,
        train_epoch,
        batch_size,
    )
    config.validate()
    x_train, y_train, *_ = _normalized(
        Source.of(data_dir, mirror, no_default_mirrors, no_download), json_
    )
    result = bench(x_train, y_train, config)
    _emit(result, json_, render.bench_table)
