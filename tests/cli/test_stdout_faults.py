"""A closed pipe (`| head`) or a full stdout (`>/dev/full`) loses no run and prints no
traceback (issue #13: `train --save ... | head` exited 1 mid-run with no checkpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

FCGRAD = [sys.executable, "-m", "fcgrad"]


def test_train_piped_into_head_still_saves_its_checkpoint(
    mnist_data_dir: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "w.npz"
    args = ["train", "--epochs", "2", "--save", str(saved), "--data-dir", str(mnist_data_dir)]
    proc = subprocess.Popen(
        [*FCGRAD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # head -1: read a line, then close the pipe
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, stderr
    assert first.strip().startswith("Training") and "Traceback" not in stderr
    with np.load(saved) as w:  # the whole run was saved
        assert w["w1"].shape == (784, 50)


def test_train_onto_a_full_stdout_saves_and_says_so(mnist_data_dir: Path, tmp_path: Path) -> None:
    saved = tmp_path / "w.npz"
    args = ["train", "--epochs", "1", "--save", str(saved), "--data-dir", str(mnist_data_dir)]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*FCGRAD, *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300
        )
    assert done.returncode == 1 and saved.is_file()
    (line,) = done.stderr.strip().splitlines()
    assert line == "warning: the output could not be written: No space left on device"


@pytest.mark.parametrize("json_", [[], ["--json"]], ids=["table", "json"])
def test_a_full_stdout_is_one_warning_line(tmp_path: Path, json_: list[str]) -> None:
    user = tmp_path / "mine.py"
    user.write_text("from fcgrad import ops\n\ndef loss(x):\n    return ops.sum(x * x)\n")
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*FCGRAD, "gradcheck", "--function", f"{user}:loss", "--shape", "3", *json_],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr == "warning: the output could not be written: No space left on device\n"


def _closing(fd: int) -> Callable[[], None]:
    """A preexec_fn that starts the child with descriptor `fd` closed (`>&-`, `2>&-`)."""
    return lambda: os.close(fd)


def test_train_with_stdout_closed_saves_a_whole_checkpoint(
    mnist_data_dir: Path, tmp_path: Path
) -> None:
    """`fcgrad train --save w.npz >&-`: Python makes a stream closed at the start None, so
    the first print was a traceback, and no checkpoint (a helper's report on #13)."""
    saved = tmp_path / "w.npz"
    args = ["train", "--epochs", "1", "--save", str(saved), "--data-dir", str(mnist_data_dir)]
    done = subprocess.run(
        [*FCGRAD, *args], stderr=subprocess.PIPE, text=True, timeout=300, preexec_fn=_closing(1)
    )
    assert (done.returncode, done.stderr) == (0, "")
    with np.load(saved) as w:
        assert w["w1"].shape == (784, 50) and "checkpoint" in w.files


@pytest.mark.parametrize("fd", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
def test_a_closed_stream_keeps_the_exit_code(fd: int) -> None:
    """A bad value exits 2 whichever standard stream was closed (with stderr closed it
    exited 1, from the traceback that could not be printed either)."""
    done = subprocess.run(
        [*FCGRAD, "train", "--epochs", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_closing(fd),  # (after the pipes are in place: it closes one of them)
    )
    assert done.returncode == 2
    shown = "" if fd == 2 else "error: --epochs must be at least 1, got 0"
    assert done.stderr.startswith(shown) and "Traceback" not in done.stderr


def test_version_onto_a_full_stdout_is_one_warning_line() -> None:
    """`--version` prints before the CLI loads, so the CLI's guarded stdout was not there:
    a full stdout was an OSError's traceback."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*FCGRAD, "--version"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert done.returncode == 1
    assert done.stderr == "warning: the output could not be written: No space left on device\n"
