"""The `fcgrad` command line: a thin Typer layer over the pure core.

Each command (one module a group in `fcgrad.cli.commands`, registered below) parses
options, calls the core, and renders the result with `fcgrad.cli.render` (or prints one
JSON object with `--json`). An error becomes one red line on stderr and one exit code
rule holds for every bad value alike: 2 for a value fcgrad cannot use, whether the parser
(`--seed -1`) or the core (`--epochs 0`, a `ConfigError`, its parameter named by the
command's flag for it) finds it; 1 for any other error of the core (a missing or corrupt
file, a failed mirror, a failed check, a diverged run); 128 + the signal's number for a
stop signal (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer._click.core import Command  # typer's own click
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.globals import get_current_context

from fcgrad import interrupts
from fcgrad.cli.completion import make_installs_atomic
from fcgrad.errors import ConfigError, FcgradError, one_line
from fcgrad.fileio import MAX_SHOWN, os_reason, short_path
from fcgrad.jsonio import finite


class _OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad value, an unknown option) as one line on stderr and exit 2, like
    the core's ConfigError, instead of a framed usage box; flags without `<bool>` in help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_metavars(super().get_params(ctx))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _past_typer():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _past_typer():
            return super().invoke(ctx)

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
        guard, guard_err = GuardedStdout(sys.stdout), GuardedStdout(sys.stderr)
        sys.stdout, sys.stderr = guard, guard_err
        try:
            code = self._run(call)
        finally:
            sys.stdout, sys.stderr = guard.stream, guard_err.stream
        sys.exit(guard.verdict(code))

    def _run(self, call: dict[str, Any]) -> int:
        """The command's exit code: a usage error, an interrupt and Exit become codes."""
        try:
            code = super().main(**call, standalone_mode=False)
        except NoArgsIsHelpError as e:  # `fcgrad` alone: the help, as usual
            print(e.ctx.get_help() if e.ctx else e.format_message())
            return 0
        except ClickException as e:
            ctx = getattr(e, "ctx", None)
            where = help_hint(ctx)
            message = one_line(_plain(e.format_message()))
            say(err, f"[bold red]error:[/] {escape(message)}{where}")
            return e.exit_code
        except _Interrupted as e:  # while typer parses or builds the command
            err.print(interrupts.message(e.signum), highlight=False)
            return interrupts.exit_code(e.signum)
        except typer.Abort:  # (EOF at a prompt)
            err.print("interrupted", highlight=False)
            return interrupts.exit_code(interrupts.SIGINT)
        except FcgradError as e:  # typer's own writes through fcgrad's (completion.py)
            say(err, f"[bold red]error:[/] {escape(one_line(str(e)))}")
            return USER
        except OSError as e:  # typer's own writes (--install-completion onto a full disk);
            # a command's are the core's errors already
            where = f": {short_path(e.filename)}" if e.filename else ""
            say(err, f"[bold red]error:[/] {escape(os_reason(e))}{escape(where)}")
            return USER
        return code if isinstance(code, int) else 0


class _Interrupted(Exception):
    """A stop signal's interrupt carried past typer, which makes one that comes while it
    parses the command line a silent exit 130 (`Exit(130)`, whatever the signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(interrupts.message(signum))
        self.signum = signum


@contextlib.contextmanager
def _past_typer() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt as e:
        raise _Interrupted(interrupts.signal_of(e)) from None


# What fcgrad draws beyond ASCII, for a terminal that cannot show it (LANG=C, an ASCII
# PYTHONIOENCODING): rich draws its boxes in ASCII there by itself.
ASCII_FALLBACK = str.maketrans(
    {
        **dict(zip("▁▂▃▄▅▆▇█", "_.-=+*##", strict=True)),
        **dict(zip("░▒▓", ".:#", strict=True)),
        "\u00d7": "x",  # the multiplication sign of shapes
        "…": "...",
        "±": "+-",
        "━": "-",
        "╺": "-",
        "╸": "-",
        "─": "-",
        "·": ".",
    }
)


class GuardedStdout(io.TextIOBase):
    """stdout (or stderr) that a closed pipe (`fcgrad train | head`), a full file
    (`>/dev/full`) or an ASCII-only terminal cannot stop: characters the stream cannot
    encode are drawn in ASCII (ASCII_FALLBACK, else '?'); the first failed write is kept
    in `failed` and the rest of the output dropped, while the command goes on (a training
    run still saves its checkpoint). Rich would otherwise exit 1 at the first broken
    write, mid-run, and raise UnicodeEncodeError on an ASCII terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        if self.failed is None:
            try:
                try:
                    self.stream.write(text)
                except UnicodeEncodeError:
                    encoding = self.encoding
                    plain = text.translate(ASCII_FALLBACK).encode(encoding, "replace")
                    self.stream.write(plain.decode(encoding))
            except OSError as e:
                self._fail(e)
        return len(text)

    def flush(self) -> None:
        if self.failed is None:
            try:
                self.stream.flush()
            except OSError as e:
                self._fail(e)

    def _fail(self, error: OSError) -> None:
        self.failed = error
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more reaches the pipe,
            os.dup2(devnull, self.stream.fileno())  # nor the interpreter's last flush
            os.close(devnull)

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", "utf-8"))

    def verdict(self, code: int) -> int:
        """The exit code once the command is done: a closed pipe changes nothing (its reader
        wanted no more); output that could not be written is one warning line and exit 1."""
        self.flush()
        if self.failed is None or self.failed.errno == errno.EPIPE:
            return code
        say(err, f"[yellow]warning:[/] the output could not be written: {os_reason(self.failed)}")
        return code or USER


_REWORDED = (  # typer's wording of a range check, in the core's ("--repeat must be at least 1")
    (r"Invalid value for '(--[\w-]+)': Input should be greater than or equal to (\S+)",
     r"\1 must be at least \2"),
    (r"Invalid value for '(--[\w-]+)': Input should be less than or equal to (\S+)",
     r"\1 must be at most \2"),
    (r"Input should be a valid integer, unable to parse string as an integer",
     "it must be a whole number"),
    (r"Value error, ", ""),  # pydantic-style leftovers
)  # fmt: skip


def help_hint(ctx: Any) -> str:
    """' (see fcgrad CMD --help)', which ends every usage error; empty without a context."""
    return f" (see {ctx.command_path} --help)" if ctx is not None else ""


def _plain(message: str) -> str:
    """A usage error's message on one line and in the core's words."""
    message = " ".join(message.split())  # "Choose from:\n        mnist"
    for pattern, replacement in _REWORDED:
        message = re.sub(pattern, replacement, message)
    # a path in it (click's "File '...' does not exist") shown by its ends, as the core's are
    return re.sub(rf"\S{{{MAX_SHOWN + 1},}}", lambda m: short_path(m.group()), message)


class _PlainHelp(typer.core.TyperCommand):
    """A command whose help shows no `<bool>` after a flag (--json, --help)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_flag_metavars(super().get_params(ctx))


def _no_flag_metavars(params: list[Any]) -> list[Any]:
    """`params` with metavars that fit an 80-column help: none after a flag (typer would
    show `<bool>`), `NAME` for a choice (the choices move into the help text, which wraps,
    instead of a long `<relu|tanh|sigmoid|leaky-relu>` that squeezes the help into a narrow
    column), and `<int>` for a range (the range itself still follows it)."""
    for p in params:
        if p.metavar is not None:
            continue
        kind = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        if getattr(p, "is_flag", False):
            p.metavar = ""
        elif isinstance(kind, type) and issubclass(kind, enum.Enum) and p.help:
            p.metavar = "NAME"
            names = [str(m.value) for m in kind]
            if not all(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", p.help) for n in names):
                p.help = f"{p.help} One of: {', '.join(names)}."
        elif kind is int and (getattr(p, "min", None), getattr(p, "max", None)) != (None, None):
            p.metavar = "<int>"
    return params


make_installs_atomic()  # --install-completion rewrites the shell's file whole or not at all

app = typer.Typer(
    cls=_OneLineErrors,
    help="Train a fully connected net on MNIST and verify its gradients three ways.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(given: bool) -> None:
    if given:
        from fcgrad import __version__

        print(f"fcgrad {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            metavar="",
            help="Print fcgrad's version and exit.",
        ),
    ] = False,
) -> None:
    """Train a fully connected net on MNIST and verify its gradients three ways."""


out = Console()
err = Console(stderr=True)


def say(console: Console, text: str | Text) -> None:
    """A message (markup allowed): one line when piped or captured, so that a script or a
    log reads it whole; word-wrapped at a terminal's width, where rich would otherwise
    leave the terminal to break it mid-word."""
    console.print(text, soft_wrap=not console.is_terminal, highlight=False)


def say_drawn(drawn: list[str], json_: bool) -> None:
    """Name the pictures a --plot drew (not with --json, whose object lists them)."""
    if drawn and not json_:
        say(out, f"drew {', '.join(escape(d) for d in drawn)}")


def _beside_a_terminal() -> bool:
    """Whether a terminal is on a standard stream: output piped into `less` or `tee` is
    still read on it, at its width (which rich takes from stdin or stderr)."""
    for fd in (0, 1, 2):
        try:
            os.get_terminal_size(fd)
        except (OSError, ValueError):
            continue
        return True
    return False


if not out.is_terminal and "COLUMNS" not in os.environ and not _beside_a_terminal():
    out.width = 140  # logs: room for the gradcheck table instead of rich's 80

F = TypeVar("F", bound=Callable[..., Any])

USER, USAGE = 1, 2  # exit codes: the world disagreed; a bad value (a signal: 128 + its number)


def flag_for(param: str, command: Command | None) -> str:
    """The flag of `command`'s option for the core's parameter `param` (`batch_size` ->
    `--batch-size`); `--` and the name with dashes when no option has that name."""
    for option in command.params if command is not None else ():
        long = [o for o in option.opts if o.startswith("--")]
        if option.name == param and long:
            return long[0]
    return "--" + param.replace("_", "-")


def with_flag(error: ConfigError, command: Command | None) -> str:
    """The error's message with its parameter's name replaced by the flag of `command`'s
    option for it: the name the core begins the message with, else (a name in a closing
    hint) its last occurrence as a word of its own. As it is if it names no parameter or
    shows the flag already."""
    message, param = str(error), error.param
    if param is None:
        return message
    flag = flag_for(param, command)
    spots = list(re.finditer(rf"(?<![\w-]){re.escape(param)}(?![\w-])", message))
    if flag in message or not spots:
        return message
    spot = spots[0] if spots[0].start() == 0 else spots[-1]
    return message[: spot.start()] + flag + message[spot.end() :]


def _message(error: FcgradError) -> str:
    """What the user sees of a core error: a ConfigError speaks of the running command's flag."""
    if not isinstance(error, ConfigError):
        return str(error)
    ctx = get_current_context(silent=True)
    return with_flag(error, ctx.command if ctx is not None else None)


def user_errors(fn: F) -> F:
    """Turn a FcgradError from the core into one red line on stderr and exit 2 for a
    ConfigError (a bad value, as a usage error) or 1 for any other, and Ctrl-C into one
    line and exit 130 (143 for SIGTERM, 129 for SIGHUP; files are written atomically, so
    nothing is half-written)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FcgradError as e:
            usage = isinstance(e, ConfigError)
            where = help_hint(get_current_context(silent=True)) if usage else ""
            say(err, f"[bold red]error:[/] {escape(one_line(_message(e)))}{escape(where)}")
            raise typer.Exit(USAGE if usage else USER) from None
        except KeyboardInterrupt as e:  # outside training (which stops at a step boundary)
            # Nothing to add: every file is renamed into place only when complete, and a
            # partial download resumes from its .part file by itself on the next run.
            signum = interrupts.signal_of(e)
            err.print(interrupts.message(signum), highlight=False)
            raise typer.Exit(interrupts.exit_code(signum)) from None

    return wrapper  # type: ignore[return-value]


def emit(result: Any, json_: bool, draw: Callable[[Any], Any], **extra: object) -> None:
    """Print `result` as one JSON object (its `to_dict()` plus `extra`) or drawn by rich."""
    if json_:
        print_json({**result.to_dict(), **extra})
    else:
        out.print(draw(result))


def print_json(obj: object) -> None:
    """One JSON object on stdout; NaN and infinities (not JSON) become null."""
    print(json.dumps(finite(obj), indent=2, default=_json_default, allow_nan=False))


def _json_default(o: object) -> object:
    if isinstance(o, (np.generic, np.ndarray)):
        return o.tolist()
    if isinstance(o, (Path, enum.Enum)):
        return str(o.value if isinstance(o, enum.Enum) else o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


# The commands, in the order `fcgrad --help` lists them. Their modules import the helpers
# above, hence the import down here.
from fcgrad.cli.commands import bench, data, gradcheck, lesson, model, train  # noqa: E402


def _register(name: str, fn: Callable[..., Any]) -> None:
    """Add a command; its help is its docstring with each paragraph on one line, so that
    the terminal, not the source's line breaks, decides where the lines end."""
    paragraphs = (fn.__doc__ or "").strip().split("\n\n")
    text = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    app.command(name, cls=_PlainHelp, help=text)(fn)


for _name, _fn in (
    ("download", data.download),
    ("normalize", data.normalize),
    ("train", train.train_cmd),
    ("gradcheck", gradcheck.gradcheck_cmd),
    ("bench", bench.bench_cmd),
    ("evaluate", model.evaluate_cmd),
    ("predict", model.predict_cmd),
    ("lesson", lesson.lesson_cmd),
):
    _register(_name, _fn)
