"""An ASCII-only stdout (LANG=C, PYTHONIOENCODING=ascii) gets ASCII drawings, not a
UnicodeEncodeError traceback (issue #13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _ascii_run(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}
    return subprocess.run(
        [sys.executable, "-m", "fcgrad", *args], capture_output=True, env=env, timeout=300
    )


@pytest.mark.parametrize("json_", [[], ["--json"]], ids=["table", "json"])
def test_a_function_check_on_an_ascii_terminal(tmp_path: Path, json_: list[str]) -> None:
    user = tmp_path / "mine.py"
    user.write_text("from fcgrad import ops\n\ndef loss(w):\n    return ops.sum(w * w)\n")
    done = _ascii_run("gradcheck", "--function", f"{user}:loss", "--shape", "4,3", *json_)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    done.stdout.decode("ascii")  # every byte is ASCII
    assert (b"Traceback" not in done.stderr and b"4x3" in done.stdout) or json_


def test_predict_draws_its_digit_in_ascii(mnist_data_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.npz"
    data = ("--data-dir", str(mnist_data_dir))
    trained = _ascii_run("train", "--epochs", "1", "--save", str(model), *data)
    assert trained.returncode == 0, trained.stderr.decode(errors="replace")
    trained.stdout.decode("ascii")
    shown = _ascii_run("predict", str(model), *data)
    assert shown.returncode == 0 and b"##" in shown.stdout
    shown.stdout.decode("ascii")
