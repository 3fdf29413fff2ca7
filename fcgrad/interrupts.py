"""Stop signals outside training: SIGINT (Ctrl-C), SIGTERM (`kill`, docker stop, batch
schedulers) and SIGHUP (a closed terminal) end a command with one line, `interrupted` or
`interrupted (SIGTERM)`, and exit 128 + the signal's number (130, 143, 129).

`fcgrad.entry` installs the handler before the CLI is imported. It remembers which signal
came, so that an interrupt that an import turned into another error (numpy's C extension
makes a Ctrl-C during its start an ImportError, "PyCapsule_Import could not import module
datetime") is still known for what it was. Training installs its own handlers, which stop
at the next step boundary and save, and puts these back when it is done.

Like `fcgrad.entry`, this module imports only `_signal`, which Python has loaded already.
"""

from __future__ import annotations

import _signal

SIGINT, SIGHUP, SIGTERM = _signal.SIGINT, _signal.SIGHUP, _signal.SIGTERM
NAMES = {SIGINT: "SIGINT", SIGHUP: "SIGHUP", SIGTERM: "SIGTERM"}

received: int | None = None  # the first stop signal that came, if one did


class Interrupted(KeyboardInterrupt):
    """Raised by a stop signal; a KeyboardInterrupt, so that it unwinds as Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signum, str(signum)))
        self.signum = signum


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise `Interrupted`, each only where Python's own
    default is in place: a signal ignored when fcgrad started (`nohup` ignores SIGHUP, a
    background job SIGINT) stays ignored."""
    for signum in NAMES:
        default = _signal.default_int_handler if signum == SIGINT else _signal.SIG_DFL
        if _signal.getsignal(signum) is default:
            _signal.signal(signum, _interrupt)


def hold() -> None:
    """From now on the stop signals are ignored: the command is done, and an interrupt on
    its way out would be a traceback from Python's shutdown (or, once Python has put the
    default back, an exit by the signal instead of the command's own code)."""
    for signum in NAMES:
        if is_ours(_signal.getsignal(signum)):
            _signal.signal(signum, _signal.SIG_IGN)


def is_ours(handler: object) -> bool:
    """Whether `handler` is the one `install` set: once a command's work is done it is to
    be SIG_IGN, as `hold` makes it (a signal then would end a finished command with
    `interrupted`)."""
    return handler is _interrupt


def note(signum: int) -> None:
    """Record a stop signal that another handler took (training's, which stops at the
    next step boundary): once its handlers are gone, a later signal changes nothing, as
    after the first of ours. Without it a Ctrl-C during training and a SIGTERM while its
    one line was printed were two lines, and the exit code the second one's."""
    global received
    if received is None:
        received = signum


def _interrupt(signum: int, frame: object) -> None:
    """The first stop signal raises `Interrupted`; later ones change nothing (the first is
    already unwinding the command, and a second raised inside its one-line exit would be
    a traceback), as in training."""
    global received  # (the one fact a signal handler can leave behind)
    if received is None:
        received = signum
        raise Interrupted(signum)


def signal_of(error: BaseException | None = None) -> int:
    """The number of the stop signal that interrupted: `error`'s own, else the one that
    came, else SIGINT (a KeyboardInterrupt raised by Python's own handler)."""
    return getattr(error, "signum", None) or received or SIGINT


def message(signum: int) -> str:
    """`interrupted`, naming any signal but Ctrl-C's: `interrupted (SIGTERM)`."""
    return "interrupted" if signum == SIGINT else f"interrupted ({NAMES.get(signum, signum)})"


def exit_code(signum: int) -> int:
    """128 + the signal's number, as a shell reports a process its signal ended."""
    return 128 + signum
