"""Atomic writes: a temporary left by a writer killed mid-write (SIGKILL) is removed by
the next write of the same file; one still being written is not (issue #13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from fcgrad.fileio import atomic_path

WRITER = """
import sys, numpy as np
from fcgrad.fileio import atomic_path
with atomic_path(sys.argv[1], suffix=".npz") as tmp:
    np.savez(tmp, a=np.zeros(3))
    print("writing", flush=True)
    sys.stdin.readline()  # holds the temporary until told (or killed)
"""


def _writer(target: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"  # an event
    return proc


def _temps(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".part.npz"))


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "w.npz"
    proc = _writer(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(_temps(tmp_path)) == 1 and not target.exists()  # what SIGKILL leaves
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, a=np.ones(2))
    assert _temps(tmp_path) == [] and target.is_file()


def test_a_temporary_being_written_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "w.npz"
    proc = _writer(target)
    try:
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, a=np.ones(2))
        assert len(_temps(tmp_path)) == 1  # the other writer's, still held
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    assert _temps(tmp_path) == []  # it finished and renamed its own
    with np.load(target) as saved:
        np.testing.assert_array_equal(saved["a"], np.zeros(3))  # the last to finish wins
