"""`fcgrad bench` on the real MNIST: the table, the JSON with a peer, a missing peer."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import run, run_json


def test_bench_table_for_all_three_strategies(mnist_data_dir: Path) -> None:
    result = run("bench", "--repeat", "2", "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    for word in (
        "gemm reference",
        "manual",
        "vwc",
        "tape",
        "fwd+bwd all",
        "fwd+bwd weights",
        "median ms",
        "vs gemm",
        "GFLOP/s",
        "peak MB",
        "60,000 rows",
    ):
        assert word in result.stdout


def test_bench_json_with_a_peer_and_a_training_epoch(mnist_data_dir: Path) -> None:
    args = (
        "bench",
        "--repeat",
        "3",
        "--rows",
        "2000",
        "--strategy",
        "vwc",
        "--compare",
        "autograd",
    )
    report = run_json(*args, "--train-epoch", "--data-dir", mnist_data_dir)
    cases = [(t["implementation"], t["phase"]) for t in report["timings"]]
    for impl in ("gemm reference", "vwc", "autograd"):
        for phase in ("forward", "fwd+bwd all", "fwd+bwd weights"):
            assert (impl, phase) in cases
    assert ("vwc", "train epoch") in cases
    assert all(len(t["times_ms"]) >= 1 and t["ratio"] >= 1.0 for t in report["timings"])


def test_bench_compare_with_an_unknown_library_is_a_usage_error(mnist_data_dir: Path) -> None:
    result = run("bench", "--compare", "tensorflow", "--data-dir", mnist_data_dir)
    assert result.exit_code == 2 and "choose from numpy, torch, jax, autograd" in result.stderr
