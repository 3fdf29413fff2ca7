"""`fcgrad normalize` on the real MNIST: the lesson's statistics, its JSON and its --output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import run, run_json


def test_normalize_shows_the_lessons_statistics(mnist_data_dir: Path, tmp_path: Path) -> None:
    result = run("normalize", "--data-dir", mnist_data_dir, "--output", tmp_path / "n.npz")
    assert result.exit_code == 0, result.output
    assert "0.13066" in result.stdout and "0.30811" in result.stdout
    assert "0.0060" in result.stdout and "1.0077" in result.stdout
    assert result.stdout.count("pass") == 2
    with np.load(tmp_path / "n.npz") as saved:
        assert saved["x_train"].shape == (60000, 784) and saved["x_valid"].shape == (10000, 784)
        assert float(saved["mean"]) == pytest.approx(0.13066, abs=1e-5)
        assert abs(float(saved["x_train"].mean())) < 1e-3


def test_normalize_json(mnist_data_dir: Path) -> None:
    report = run_json("normalize", "--data-dir", mnist_data_dir)
    assert report["ok"] is True
    assert report["train_before"]["mean"] == pytest.approx(0.13066, abs=1e-5)
    assert report["train_before"]["std"] == pytest.approx(0.30811, abs=1e-5)
    assert [c["passed"] for c in report["checks"]] == [True, True]


def test_output_never_replaces_a_special_file(tmp_path: Path, mnist_data_dir: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run("normalize", "--data-dir", mnist_data_dir, "--output", fifo)
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not a 220 MB regular file
