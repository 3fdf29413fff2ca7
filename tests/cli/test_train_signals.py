"""A stop signal while `fcgrad train` writes its checkpoint waits for the save instead of
cutting it short (a helper's report on #13: SIGTERM during the final save, or a second
Ctrl-C during the Ctrl-C save, lost the whole run). The signals are real ones, sent to
this process by the save itself: an event, not a timer."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.cli.commands import train as train_module
from fcgrad.errors import WriteError
from fcgrad.training import train as train_core
from fcgrad.training.checkpoint import Checkpoint
from tests.cli.helpers import interrupt_once_training, run


def signalling(real: Callable[..., Any], *signums: int) -> Callable[..., Any]:
    """`real`, which first sends this process each of `signums`."""

    def call(*args: Any, **kw: Any) -> Any:
        for signum in signums:
            os.kill(os.getpid(), signum)
        return real(*args, **kw)

    return call


@pytest.fixture
def signal_during_save(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Checkpoint.save sends this process a SIGINT as it starts; the paths it saved to."""
    real, saved = signalling(Checkpoint.save, signal.SIGINT), []

    def save(self: Checkpoint, path: Any, *args: Any, **kw: Any) -> Path:
        done: Path = real(self, path, *args, **kw)
        saved.append(done)
        return done

    monkeypatch.setattr(Checkpoint, "save", save)
    return saved


def test_a_signal_during_the_final_save_waits_for_it(
    mnist_data_dir: Path, tmp_path: Path, signal_during_save: list[Path]
) -> None:
    target = tmp_path / "w.npz"
    result = run("train", "--epochs", "1", "--save", target, "--data-dir", mnist_data_dir)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == f"stopped (SIGINT) after the last epoch; saved to {target}"
    assert signal_during_save == [target]
    back = Checkpoint.load(target)
    assert [e.epoch for e in back.history] == [1] and back.epoch == 2


def test_a_second_ctrl_c_during_the_ctrl_c_save_waits_for_it(
    mnist_data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signal_during_save: list[Path],
) -> None:
    """The first Ctrl-C comes as training starts, the second as its checkpoint is saved."""
    monkeypatch.setattr(train_module, "train", signalling(train_module.train, signal.SIGINT))
    target = tmp_path / "w.npz"
    result = run("train", "--epochs", "1", "--save", target, "--data-dir", mnist_data_dir)
    assert result.exit_code == 130, result.output
    line = " ".join(result.stderr.split())
    assert line.startswith("interrupted at epoch 1, step ") and "Traceback" not in line
    assert f"saved to {target}; resume with: fcgrad train --resume {target}" in line
    assert Checkpoint.load(target).epoch == 1 and signal_during_save == [target]
    with np.load(target) as w:
        assert w["w1"].shape == (784, 50)


def test_signals_after_the_last_step_let_the_run_finish_and_save(
    mnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two SIGTERMs during the last epoch's evaluation (after its last step, before the
    save): the second interrupted at once and lost a finished run, exit 130 (a helper's
    report on #13). Now no signal cuts training short: it saves and exits 143."""
    twice = signalling(train_core.evaluate, signal.SIGTERM, signal.SIGTERM)
    monkeypatch.setattr(train_core, "evaluate", twice)
    target = tmp_path / "w.npz"
    result = run("train", "--epochs", "1", "--save", target, "--data-dir", mnist_data_dir)
    assert result.exit_code == 143, result.output
    assert result.stderr.strip() == f"stopped (SIGTERM) after the last epoch; saved to {target}"
    assert [e.epoch for e in Checkpoint.load(target).history] == [1]


def test_a_signal_ignored_at_the_start_stays_ignored(mnist_data_dir: Path, tmp_path: Path) -> None:
    """`nohup fcgrad train ...`: nohup starts it with SIGHUP ignored, so that logging out
    leaves it running; fcgrad installed its own handler over that, and stopped."""
    script = Path(sys.executable).parent / "fcgrad"
    fcgrad = str(script if script.exists() else shutil.which("fcgrad"))
    argv = ["sh", "-c", 'trap "" HUP; exec "$0" "$@"', fcgrad, "train", "--epochs", "1"]
    argv += ["--strategy", "manual", "--data-dir", str(mnist_data_dir)]
    argv += ["--save", str(tmp_path / "w.npz")]
    stderr = interrupt_once_training(argv, tmp_path, signal.SIGHUP, code=0)
    assert "interrupted" not in stderr
    assert Checkpoint.load(tmp_path / "w.npz").epoch == 2  # the whole run


def test_a_signal_during_a_rescued_final_save_keeps_its_exit_code(
    mnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM, then the final save fails and is rescued: the line says both, exit 143 (it
    was the disk-full line alone, exit 1)."""
    rescued = str(tmp_path / "fcgrad-rescued-w-1234.npz")

    def full(self: Checkpoint, path: Any, *args: Any, **kw: Any) -> Path:
        raise WriteError(
            f"cannot write {path}: No space left on device; the checkpoint is saved to "
            f"{rescued} instead",
            rescued=rescued,
        )

    monkeypatch.setattr(Checkpoint, "save", signalling(full, signal.SIGTERM))
    target = tmp_path / "w.npz"
    result = run("train", "--epochs", "1", "--save", target, "--data-dir", mnist_data_dir)
    assert result.exit_code == 143, result.output
    assert " ".join(result.stderr.split()) == (
        f"stopped (SIGTERM) after the last epoch; cannot write {target}: No space left on "
        f"device; the checkpoint is saved to {rescued} instead"
    )
