"""Another program keeping one core busy, so that bench measures what a busy machine does
to an epoch (issue #12: 19x slower at numpy's default 2 BLAS threads) in the same run."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

LIMIT_S = 600.0  # the helper ends by itself after this, whatever happens to bench

# Spins on one core until its deadline; says so first, so that the caller waits for an
# event (the line), not for a guessed delay.
_SPIN = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "print('spinning', flush=True)\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


@contextlib.contextmanager
def one_core_busy(limit_s: float = LIMIT_S) -> Iterator[subprocess.Popen[bytes]]:
    """Within: a helper process spins on one core. It is bounded: killed on leaving the
    block (also on an exception or Ctrl-C), and it ends by itself after `limit_s` seconds."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SPIN, str(limit_s)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # it is spinning
        yield proc
    finally:
        proc.kill()
        proc.wait()
