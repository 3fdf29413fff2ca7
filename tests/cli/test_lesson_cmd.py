"""`fcgrad lesson` on the real MNIST: the lesson's numbers, its JSON and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.data.normalize import normalize_pair
from fcgrad.data.prepare import Prepared
from fcgrad.nn.losses import Loss
from fcgrad.strategies import manual
from tests.cli.helpers import run, run_json


@pytest.fixture(scope="module")
def report(mnist_data_dir: Path) -> Any:
    return run_json("lesson", "--data-dir", mnist_data_dir, "--repeat", "1")


def test_the_lessons_numbers_on_mnist(report: Any) -> None:
    assert report["ok"] is True and report["failures"] == []
    s = report["sections"]
    norm = s["normalization"]
    assert norm["train_before"]["mean"] == pytest.approx(0.13066, abs=1e-5)
    assert norm["train_before"]["std"] == pytest.approx(0.30811, abs=1e-5)
    assert norm["valid_after"]["mean"] == pytest.approx(0.0060, abs=1e-3)
    assert norm["valid_after"]["std"] == pytest.approx(1.0077, abs=1e-3)
    assert {k: s["sizes"][k] for k in "nmc"} == {"n": 60_000, "m": 784, "c": 10}
    kaiming, naive = s["init"]["kaiming"], s["init"]["naive"]
    assert 0.5 <= kaiming["relu_mean"] <= 0.6 and 0.8 <= kaiming["relu_std"] <= 0.9  # 0.554 0.843
    assert 0.35 <= naive["relu_mean"] <= 0.45 and 0.5 <= naive["relu_std"] <= 0.65  # 0.391 0.596
    assert kaiming["lin_std"] == pytest.approx(np.sqrt(2), abs=0.1)  # 1.409
    assert s["initial_mse"]["mse"] == pytest.approx(34.39, abs=0.01)  # seed 0
    assert s["gradients"]["rows"] == 60_000
    assert s["scalars"]["sin_cos"]["gradient"] == pytest.approx(-3.0501623, abs=1e-6)
    assert s["call_trace"]["value, then gradient(at:)"]["counts"] == {"square": 2, "square'": 1}
    assert set(s["timings"]["strategies"]) == {"manual", "vwc", "tape"}
    for sec in s.values():
        assert all(isinstance(c["passed"], bool) for c in sec["checks"]) and sec["ok"]


def test_the_tables_exit_0(mnist_data_dir: Path) -> None:
    result = run("lesson", "--data-dir", mnist_data_dir, "--repeat", "1")
    assert result.exit_code == 0, result.output
    assert "1. Normalization" in result.stdout and "8. Timings" in result.stdout
    assert "average: " in result.stdout and "all 51 checks pass" in result.stdout


@pytest.fixture
def synthetic_data(synthetic: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """The command given the synthetic set instead of MNIST (the fast tier)."""
    x_train, y_train, x_valid, y_valid = synthetic
    xt, xv, stats, norm = normalize_pair(x_train, x_valid)
    data = Prepared(xt, y_train, xv, y_valid, stats, norm)
    monkeypatch.setattr("fcgrad.cli.commands.lesson.prepared", lambda src, quiet: data)


def test_a_failed_check_exits_1(synthetic_data: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("lesson", "--repeat", "1", "--json").exit_code == 0

    def wrong(inp: Any, targ: np.ndarray) -> float:
        inp.grad = (1.0 / targ.shape[0]) * (inp.value - targ[:, None])
        return float(np.mean(np.square(inp.value[:, 0] - targ)))

    monkeypatch.setitem(manual.LOSSES, Loss.mse, wrong)
    result = run("lesson", "--repeat", "1", "--json")
    assert result.exit_code == 1, result.output
    d = json.loads(result.stdout)
    assert d["ok"] is False and "gradients: vwc w1 = manual" in d["failures"]
    table = run("lesson", "--repeat", "1")
    assert table.exit_code == 1 and "FAIL" in table.stdout and "checks FAIL" in table.stdout


def test_repeat_below_1_is_a_usage_error(synthetic_data: None) -> None:
    assert run("lesson", "--repeat", "0").exit_code == 2
