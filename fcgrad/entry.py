"""The `fcgrad` console script: Ctrl-C while the CLI's modules are still loading, or while
typer builds the command, is one line, exit 130, not a traceback from inside an import.

The same holds for SIGTERM and SIGHUP (`interrupted (SIGTERM)`, exit 143), and for an
interrupt that an import turned into an error of its own (numpy's C extension makes a
Ctrl-C during its start an ImportError): `fcgrad.interrupts` notes which signal came.

The console script imports this module before any handler can run, so it,
`fcgrad/__init__.py` and `fcgrad.interrupts` import nothing but `sys`, `os`, `_signal`
and `importlib` (which Python has loaded already): what is left of that window is
Python's own start.
"""

from __future__ import annotations

import sys

from fcgrad import interrupts


def main() -> None:
    """Import the CLI, then run it (`--version` alone needs none of it)."""
    if sys.argv[1:] == ["--version"]:
        _print_version()
        return
    interrupts.install()
    _open_closed_streams()
    try:
        from fcgrad.cli.app import app

        app()  # (a command catches its own interrupt; this one comes before or after it)
    except KeyboardInterrupt as e:
        _interrupted(interrupts.signal_of(e))
    except Exception:
        if interrupts.received is None:
            raise
        _interrupted(interrupts.received)  # an import made the interrupt its own error
    finally:
        interrupts.hold()


def _interrupted(signum: int) -> None:
    """One line, and exit 128 + the signal's number."""
    interrupts.hold()
    try:  # noqa: SIM105 (contextlib is one import more in the window this module guards)
        print(interrupts.message(signum), file=sys.stderr)
    except OSError:  # (stderr full or closed: the exit code says it)
        pass
    sys.exit(interrupts.exit_code(signum))


def _open_closed_streams() -> None:
    """Give a standard stream closed at the start (`>&-`, `2>&-`, `<&-`), which Python
    makes None, the null device: its output is dropped, as a closed pipe's is, instead of
    a traceback from the first print; and no file opened later (a checkpoint) takes its
    descriptor and receives what is printed."""
    import os

    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:  # closed: the null device takes its number
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def _print_version() -> None:
    """`fcgrad --version` without the CLI: a closed pipe ends quietly, a full stdout
    (`>/dev/full`) is one warning line and exit 1, as for every command."""
    import os

    from fcgrad import __version__

    _open_closed_streams()
    try:
        print(f"fcgrad {__version__}", flush=True)
    except OSError as e:
        null = os.open(os.devnull, os.O_WRONLY)  # (nor the interpreter's last flush)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        if e.errno != 32:  # EPIPE: its reader wanted no more
            print(f"warning: the output could not be written: {e.strerror}", file=sys.stderr)
            sys.exit(1)
