"""`fcgrad gradcheck` of the net on the real MNIST: each strategy, loss and depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import run, run_json


def test_rows_beyond_the_training_set_is_an_error(mnist_data_dir: Path) -> None:
    result = run("gradcheck", "--rows", "70000", "--data-dir", mnist_data_dir)
    assert result.exit_code == 2 and "--rows 70000 is more than the 60,000" in result.stderr


@pytest.mark.parametrize("strategy", ["vwc", "manual", "tape", "all"])
def test_gradcheck_passes_on_all_60000_rows(mnist_data_dir: Path, strategy: str) -> None:
    result = run("gradcheck", "--strategy", strategy, "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    assert "60,000 rows" in result.stdout and "FAIL" not in result.stdout
    assert "|a - r| <=" in result.stdout  # the tolerance rule is printed


def test_gradcheck_json_and_cross_entropy(mnist_data_dir: Path) -> None:
    report = run_json(
        "gradcheck",
        "--strategy",
        "tape",
        "--loss",
        "cross-entropy",
        "--rows",
        "5000",
        "--data-dir",
        mnist_data_dir,
    )
    assert report["ok"] and report["rows_used"] == 5000
    assert {c["parameter"] for c in report["checks"]} == {"all", "w1", "b1", "w2", "b2", "x"}
    assert {tuple(c["shape"]) for c in report["checks"] if c["parameter"] == "w2"} == {(50, 10)}


def test_gradcheck_of_a_deeper_net_with_another_activation(mnist_data_dir: Path) -> None:
    args = ("--activation", "leaky-relu", "--loss", "cross-entropy", "--hidden", "64")
    more = ("--hidden", "32", "--rows", "3000", "--fd-rows", "200", "--data-dir", mnist_data_dir)
    report = run_json("gradcheck", *args, *more)
    assert report["ok"] and report["config"]["activation"] == "leaky-relu"
    assert {tuple(c["shape"]) for c in report["checks"] if c["parameter"] == "w3"} == {(32, 10)}


def test_gradcheck_deeper_net_both_losses(mnist_data_dir: Path) -> None:
    for loss in ("mse", "cross-entropy"):
        args = ("gradcheck", "--hidden", "128", "--hidden", "64", "--loss", loss, "--rows", "10000")
        result = run(*args, "--data-dir", mnist_data_dir)
        assert result.exit_code == 0, result.output
        assert "w3" in result.stdout and "784×128" in result.stdout  # noqa: RUF001
