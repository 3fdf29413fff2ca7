"""Memory estimates, hand-computed, and the refusal of a net too big to train."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fcgrad.errors import ConfigError
from fcgrad.nn import Loss, Net, init_params, memory
from fcgrad.training import train as train_module
from fcgrad.training.train import TrainConfig, evaluate, train
from tests.cli.helpers import run

LESSON = Net.mlp((784, 50, 10), Loss.cross_entropy)


def test_the_estimates_hand_computed() -> None:
    assert memory.param_count(LESSON) == 784 * 50 + 50 + 50 * 10 + 10 == 39_760
    # 64 rows x (784 + 50 + 10) widths x 4 bytes x 4 live copies
    assert memory.pass_bytes(LESSON, 64) == 64 * 844 * 16
    assert memory.eval_chunk_rows(LESSON) == 256 * 2**20 // (784 * 16) == 21_399
    params = 39_760 * 4
    evaluation = 21_399 * 784 * 16
    assert memory.train_bytes(LESSON, 64, "adam") == 2 * params + 2 * params + 64 * 844 * 16 + (
        evaluation
    )
    assert memory.train_bytes(LESSON, 64, "sgd") == 2 * params + 64 * 844 * 16 + evaluation


def test_a_net_that_does_not_fit_is_refused_with_the_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)  # 1 GB
    wide = Net.mlp((784, 1_000_000, 10), Loss.cross_entropy)
    needed = memory.train_bytes(wide, 64, "sgd")
    with pytest.raises(ConfigError) as e:
        memory.check_fits(needed, "training it")
    assert e.value.param == "hidden"
    assert str(e.value) == (
        f"hidden too large: training it needs about {needed / 2**30:,.1f} GB of memory and "
        "1.0 GB is available"
    )
    memory.check_fits(2**29, "training it")  # 512 MB fits


def test_a_batch_holds_at_most_the_data_and_a_too_large_batch_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--batch-size 10^8 trains in batches of the 60,000 rows there are, so it was refused
    for memory it never needs, and as '--hidden too large' (a helper's report on #13)."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**31)  # 2 GB
    train_module.check_memory(TrainConfig(batch_size=10**8))  # 60,000 x 844 x 16: 0.8 GB
    # 784-2000-10 in batches of 60,000 rows: 60,000 x 2,794 x 16 bytes = 2.5 GB of pass
    with pytest.raises(ConfigError) as e:
        train_module.check_memory(TrainConfig(hidden=(2000,), batch_size=10**8))
    assert e.value.param == "batch_size"
    assert str(e.value).startswith(
        "batch_size too large: training a 784-2000-10 relu, cross-entropy net with sgd in "
        "batches of 60,000 rows needs about 2.8 GB"
    )
    with pytest.raises(ConfigError) as e:  # its weights and gradients: 2 x 3.9 x 10^8 x 4 bytes
        train_module.check_memory(TrainConfig(hidden=(500_000,)))
    assert e.value.param == "hidden"


def test_train_refuses_before_any_work(monkeypatch: pytest.MonkeyPatch, synthetic: Any) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    monkeypatch.setattr(train_module, "init_params", lambda *a: pytest.fail("it started"))
    x, y, xv, yv = (a[:64] for a in synthetic)
    with pytest.raises(ConfigError, match=r"^hidden too large: training a 784-50-10"):
        train(x, y, xv, yv, TrainConfig(epochs=1))


def test_evaluation_in_chunks_agrees_with_one_pass(
    monkeypatch: pytest.MonkeyPatch, synthetic: Any
) -> None:
    x, labels = synthetic[2], synthetic[3]
    params = init_params(LESSON, 0)
    whole = evaluate(params, x, labels, LESSON)
    monkeypatch.setattr(memory, "EVAL_BUDGET_BYTES", 64 * 784 * 16)  # 64-row chunks
    monkeypatch.setattr(train_module, "eval_chunk_rows", memory.eval_chunk_rows)
    assert memory.eval_chunk_rows(LESSON) == 64
    chunked = evaluate(params, x, labels, LESSON)
    assert chunked[1] == whole[1] and chunked[0] == pytest.approx(whole[0], rel=1e-6)
    assert np.isfinite(chunked[0])


def test_evaluation_in_chunks_holds_one_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide net's evaluation holds one chunk's activations, not the whole set's: 1,000
    rows through a 4,096-wide layer are 16 MB per array in one pass, and under a 1 MB
    budget (16 rows a chunk) the whole evaluation allocates under 4 MB (numpy reports
    its arrays to tracemalloc)."""
    import tracemalloc

    wide = Net.mlp((784, 4096, 10), Loss.cross_entropy)
    params = init_params(wide, 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 1000)
    whole = evaluate(params, x, labels, wide)
    monkeypatch.setattr(memory, "EVAL_BUDGET_BYTES", 2**20)
    assert memory.eval_chunk_rows(wide) == 2**20 // (4096 * 16) == 16
    tracemalloc.start()
    try:
        chunked = evaluate(params, x, labels, wide)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak
    assert chunked[1] == whole[1] and chunked[0] == pytest.approx(whole[0], rel=1e-5)


def test_the_cli_refuses_a_net_far_too_big_in_one_line() -> None:
    result = run("train", "--hidden", "1000000000", "--no-download", "--data-dir", "/nonexistent")
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --hidden too large: training a 784-1000000000-10 relu")
    assert "GB of memory and" in line
