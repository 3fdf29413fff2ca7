"""Shared helpers of the CLI tests: the app run in process through Typer's test runner."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fcgrad.cli.app import app

runner = CliRunner()


def run(*args: str, **kw: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args], **kw)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def interrupt_once_training(
    argv: list[str], tmp_path: Path, signum: int = signal.SIGINT, code: int = 130
) -> str:
    """Run `fcgrad train` on a terminal (a pty), send `signum` when its live display shows
    that training has begun (an event: the first frame, after the data is loaded), and
    return its stderr once it has exited with `code`."""
    import pty
    import select
    import threading

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    with open(tmp_path / "stderr.txt", "w+") as err_file:
        proc = subprocess.Popen(argv, stdout=slave, stderr=err_file, env=env)
        os.close(slave)
        seen = bytearray()
        while b"Training" not in seen:  # the display's title: training has begun
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, "no training display within 120 s"
            seen += os.read(master, 4096)
        proc.send_signal(signum)

        def drain() -> None:  # the child must not block on a full terminal
            with contextlib.suppress(OSError):
                while os.read(master, 4096):
                    pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        proc.wait(timeout=120)
        os.close(master)
        err_file.seek(0)
        stderr = err_file.read()
    assert proc.returncode == code, stderr
    return stderr
