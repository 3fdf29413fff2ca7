"""Run `fcgrad` on a real terminal of a given size and read back what it shows.

The command runs on a pty whose window size is set with TIOCSWINSZ (so rich sizes its
output from the terminal, as for a user, not from $COLUMNS); its bytes are replayed into
pyte, a VT100 emulator, wider than the pty, so a line drawn past the terminal's edge stays
visible instead of wrapping. Live displays (progress bars) move the cursor and erase
themselves; what is left on the screen is what a user sees when the command is done.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass

import pyte

SPARE_COLUMNS = 120  # beyond the pty's width: room for a line that overflows
LINES = 2000  # the emulator's height: no output scrolls off


@dataclass
class Shown:
    """What a terminal shows after the command: its lines (right-stripped) and exit code."""

    lines: list[str]
    code: int
    raw: bytes

    def text(self) -> str:
        return "\n".join(self.lines)

    def frames(self) -> list[str]:
        """Every line drawn, the progress bar's redrawn frames included (split at CR and
        LF, escape sequences removed): what the terminal showed at some moment."""
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw.decode(errors="replace"))
        return [frame for frame in re.split(r"[\r\n]", text) if frame]


def _sized_pty(columns: int, rows: int = 50) -> tuple[int, int]:
    """A pty (master, slave) whose window is `columns` x `rows`, set with TIOCSWINSZ."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def _env_without(*names: str) -> dict[str, str]:
    """This process's environment but `names` (a size in $COLUMNS would win over the pty's)."""
    return {k: v for k, v in os.environ.items() if k not in names}


def on_terminal(*args: str, columns: int, rows: int = 50, timeout: float = 300) -> Shown:
    """Run `python -m fcgrad ARGS` on a pty `columns` wide and `rows` high; its screen."""
    master, slave = _sized_pty(columns, rows)
    env = _env_without("COLUMNS", "LINES", "NO_COLOR")
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fcgrad", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,  # the pty becomes its controlling terminal
    )
    os.close(slave)
    raw = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        assert ready, f"fcgrad {' '.join(args)}: no output for {timeout} s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        raw += chunk
    os.close(master)
    code = proc.wait(timeout=timeout)
    screen = pyte.Screen(columns + SPARE_COLUMNS, LINES)
    pyte.ByteStream(screen).feed(bytes(raw))
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return Shown(lines, code, bytes(raw))


def piped_beside_a_terminal(*args: str, columns: int | None, timeout: float = 300) -> str:
    """`python -m fcgrad ARGS | ...`: its stdout (returned) a pipe, its stdin and stderr
    a pty `columns` wide, as for `fcgrad gradcheck | less` (no terminal at all, as for a
    log, when `columns` is None); exit code 0 asserted."""
    env = _env_without("COLUMNS", "LINES")
    master, slave = _sized_pty(columns) if columns is not None else (None, None)
    done = subprocess.run(
        [sys.executable, "-m", "fcgrad", *args],
        stdin=slave if slave is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave if slave is not None else subprocess.PIPE,
        env=env,
        timeout=timeout,
        check=False,
    )
    for fd in (master, slave):
        if fd is not None:
            os.close(fd)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()
