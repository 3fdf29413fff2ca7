"""A full disk under --save or --output: one line, exit 1, and the trained weights kept
where the line says (issue #13: the weights were gone, after a traceback)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer

from fcgrad.cli.commands import train as train_cmd
from fcgrad.data.prepare import Source
from fcgrad.training.checkpoint import Checkpoint
from fcgrad.training.train import TrainConfig, train
from tests.cli.helpers import interrupt_once_training, run
from tests.faults import full_disk


@pytest.fixture
def rescue_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_train_save_onto_a_full_disk_keeps_the_weights(
    mnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rescue_dir: Path
) -> None:
    with full_disk(tmp_path, monkeypatch) as full:
        result = run(
            "train", "--epochs", "1", "--save", full / "model.npz", "--data-dir", mnist_data_dir
        )
        assert list(full.iterdir()) == []
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    (rescued,) = rescue_dir.iterdir()
    assert line == (
        f"error: cannot write {full / 'model.npz'}: No space left on device; "
        f"the checkpoint is saved to {rescued} instead"
    )
    shown = run("evaluate", rescued, "--data-dir", mnist_data_dir)  # it is a whole checkpoint
    assert shown.exit_code == 0 and "accuracy" in shown.stdout


def test_normalize_output_onto_a_full_disk_is_one_line(
    mnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with full_disk(tmp_path, monkeypatch) as full:
        result = run("normalize", "--output", full / "n.npz", "--data-dir", mnist_data_dir)
        assert list(full.iterdir()) == []
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: cannot write {full / 'n.npz'}: No space left on device"


INJECT_ENOSPC = """
import numpy as np
sys.path.insert(0, {root!r})
from tests.faults import enospc_savez
np.savez = enospc_savez(Path({full!r}))
"""


def test_a_real_ctrl_c_onto_a_full_disk_rescues_the_run(
    mnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rescue_dir: Path
) -> None:
    """SIGINT sent to a training process whose --save folder is full (a 16 KB tmpfs, or
    ENOSPC injected into that process where no tmpfs can be mounted): the checkpoint goes
    to the temp folder, and the message says how to resume from it."""
    monkeypatch.setenv("TMPDIR", str(rescue_dir))
    with full_disk(tmp_path, monkeypatch) as full:
        root = str(Path(__file__).resolve().parents[2])
        inject = "" if os.path.ismount(full) else INJECT_ENOSPC.format(root=root, full=str(full))
        argv = ["fcgrad", "train", "--epochs", "4", "--strategy", "manual"]
        argv += ["--save", str(full / "w.npz"), "--data-dir", str(mnist_data_dir)]
        probe = f"import sys\nfrom pathlib import Path\n{inject}\nsys.argv = {argv!r}\n"
        probe += "from fcgrad.entry import main\nmain()\n"
        stderr = interrupt_once_training([sys.executable, "-c", probe], tmp_path)
        assert list(full.iterdir()) == []
    (rescued,) = rescue_dir.iterdir()
    line = " ".join(stderr.split())
    assert "No space left on device; the checkpoint is saved to" in line and "Traceback" not in line
    hint = f"resume with: fcgrad train --resume {rescued} --data-dir {mnist_data_dir}"
    assert line.endswith(hint), line
    shown = run("evaluate", rescued, "--data-dir", mnist_data_dir)  # a whole checkpoint
    assert shown.exit_code == 0 and "accuracy" in shown.stdout, shown.output


def test_ctrl_c_onto_a_full_disk_says_where_to_resume_from(
    synthetic: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rescue_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y, xv, yv = (a[:320] for a in synthetic)
    checkpoint: Checkpoint = train(x, y, xv, yv, TrainConfig(epochs=1)).checkpoint
    with full_disk(tmp_path, monkeypatch) as full, pytest.raises(typer.Exit) as e:
        train_cmd._interrupted(checkpoint, full / "w.npz", Source(tmp_path))
    assert e.value.exit_code == 130
    (rescued,) = rescue_dir.iterdir()
    line = " ".join(capsys.readouterr().err.split())
    assert "No space left on device; the checkpoint is saved to" in line
    assert line.endswith(f"resume with: fcgrad train --resume {rescued}")
