"""Typed errors raised by the fcgrad core.

The core never prints. Every error a user can cause derives from `FcgradError`;
`fcgrad.cli.app` catches it and prints its message as one red line on stderr. The exit
code says whose the fault is: 2 for a `ConfigError` (a value given to fcgrad that it
cannot use, like a usage error the command line's parser finds), 1 for every other
error (the files, the mirrors, the numbers disagreed), 130 for an interrupt.
Messages are written for that single line: they name the thing that went wrong
(the file, the mirror, the op, the option) and, where there is one, the fix.
"""

from __future__ import annotations

MAX_LINE = 1000  # characters of an error line; a 60 KB zip member's name made one of 60 KB


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """`text` as one line of at most `limit` characters (limit >= 9): control characters
    (a newline, a terminal's escape sequence, in a file name or a user function's error)
    written as Python escapes (`\\n`, `\\x1b`), and a longer text cut to its two ends
    around '...'."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[-keep:]}"


class FcgradError(Exception):
    """Base class of every error a user can cause; the CLI exits 1 on it (2 on a ConfigError)."""


class ConfigError(FcgradError, ValueError):
    """An option or argument has a value fcgrad cannot use (e.g. an unknown strategy); the
    CLI exits 2 on it, as on any other bad value on the command line.

    `param` is the parameter at fault as the core spells it (`batch_size`), or None; the
    message then begins with that name, and the CLI shows the option's flag
    (`--batch-size`) in its place, so the core never names a command-line flag.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UserCodeError(FcgradError, ValueError):
    """A function given to fcgrad to check (check_grads' `f` or `grad`, gradcheck's
    `--function`) raised, or returned something other than what it must (a real scalar, a
    gradient array); the message names the function. The CLI exits 1: the value given
    was fine, the code behind it failed."""


class WriteError(FcgradError):
    """A file could not be written (a full disk, a folder gone, an over-long name); the
    message names the file and the reason. Nothing half-written is left under its name.
    `rescued` is where what it held was written instead, when it could be (a checkpoint
    goes to the temp folder), else None."""

    def __init__(self, message: str, *, rescued: str | None = None) -> None:
        super().__init__(message)
        self.rescued = rescued


class MissingExtra(FcgradError):
    """An optional dependency (an extra such as `fcgrad[plot]`) is not installed; the message
    says what to install."""


class IDXError(FcgradError, ValueError):
    """An IDX file is malformed: bad magic, unknown type byte, truncated or oversized payload."""


class DataError(FcgradError):
    """A data set is missing from, or inconsistent in, the data directory."""


class DownloadError(FcgradError):
    """Every mirror failed for a file; the message lists each URL tried and why."""


class ShapeError(FcgradError, ValueError):
    """Two arrays that must agree in shape do not (an op names itself in the message)."""


class StateError(FcgradError, ValueError):
    """A saved state holds a value no run reaches (an optimizer's negative step count or
    negative second moments); the message names the value."""


class TrainingDiverged(FcgradError, FloatingPointError):
    """The training loss became NaN or infinite; the message names epoch, step and rate."""


class GradCheckFailed(FcgradError, AssertionError):
    """A gradient check failed; the message names the check, the parameter and the element."""


class TracedValueError(FcgradError, TypeError):
    """A numpy function, a comparison or a truth test met a traced value; the message names
    the numpy function and the `fcgrad.ops` op to use, or why branching on a value is wrong."""
