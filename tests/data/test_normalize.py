"""Normalization with the training statistics, on hand-computed data and on the real MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcgrad.data import load_mnist
from fcgrad.data.normalize import normalize_pair, stats


def test_stats_hand_computed() -> None:
    s = stats(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32))
    assert s.mean == 1.5 and s.std == pytest.approx(np.sqrt(1.25))


def test_stats_chunks_agree_with_numpy() -> None:
    x = np.random.default_rng(0).random((1000, 7)).astype(np.float32)
    s = stats(x, chunk_rows=64)
    assert s.mean == pytest.approx(x.astype(np.float64).mean(), rel=1e-12)
    assert s.std == pytest.approx(x.astype(np.float64).std(), rel=1e-9)


def test_checks_fail_on_constant_data() -> None:
    x = np.ones((4, 3), np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        *_, report = normalize_pair(x, x.copy())
    assert not report.ok


def test_lesson_numbers_on_mnist(mnist_data_dir: Path) -> None:
    x_train, _, x_valid, _ = load_mnist(mnist_data_dir)
    xt, xv, train_stats, report = normalize_pair(x_train, x_valid)
    assert train_stats.mean == pytest.approx(0.13066, abs=5e-6)  # the lesson's values
    assert train_stats.std == pytest.approx(0.30811, abs=5e-6)
    assert report.valid_after.mean == pytest.approx(0.0060, abs=5e-5)
    assert report.valid_after.std == pytest.approx(1.0077, abs=5e-5)
    assert report.ok and all(c.passed for c in report.checks)
    assert xt.dtype == np.float32 and xv.dtype == np.float32
    assert x_train.max() == 1.0  # not in place unless asked
