"""Training on the real MNIST: the accuracy the issue promises, determinism, divergence, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.errors import ConfigError, TrainingDiverged
from fcgrad.losses import Loss
from fcgrad.train import TrainConfig, save_params, train


def test_defaults_reach_97_percent(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    result = train(*mnist_normalized, TrainConfig())
    assert result.config == TrainConfig(
        strategy="tape",
        loss=Loss.cross_entropy,
        hidden=(50,),
        epochs=5,
        batch_size=64,
        lr=0.1,
        seed=0,
    )
    assert [e.epoch for e in result.epochs] == [1, 2, 3, 4, 5]
    assert result.valid_accuracy >= 0.970
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss


def test_same_seed_same_weights_with_every_strategy(
    mnist_normalized: tuple[np.ndarray, ...],
) -> None:
    x, y, xv, yv = mnist_normalized
    runs = {
        s: train(x[:6400], y[:6400], xv[:1000], yv[:1000], TrainConfig(strategy=s, epochs=2))
        for s in strategies.NAMES
    }
    ref = runs["manual"].params.named()
    for s, run in runs.items():
        for name, w in run.params.named().items():
            np.testing.assert_allclose(w, ref[name], rtol=1e-5, atol=1e-6, err_msg=f"{s} {name}")


def test_mse_trains_the_lessons_regression(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    x, y, xv, yv = mnist_normalized
    result = train(x, y, xv, yv, TrainConfig(loss=Loss.mse, epochs=2, strategy="vwc"))
    assert result.config.lr == 0.01  # mse's default rate; 0.1 diverges
    # predicting the mean digit gives MSE ~8.3 and ~10% rounded accuracy; training does far better
    assert result.epochs[-1].valid_loss < 2.5
    assert result.valid_accuracy > 0.3


def test_non_finite_loss_names_epoch_step_and_rate(
    mnist_normalized: tuple[np.ndarray, ...],
) -> None:
    x, y, xv, yv = mnist_normalized
    with pytest.raises(
        TrainingDiverged,
        match=r"epoch 1, step \d+ with learning rate 1000000.0; try a smaller --lr",
    ):
        train(x[:2000], y[:2000], xv[:100], yv[:100], TrainConfig(loss=Loss.mse, lr=1e6, epochs=1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "--epochs must be at least 1"),
        ("batch_size", -1, "--batch-size must be at least 1"),
        ("lr", 0.0, "--lr must be a positive number"),
        ("lr", float("nan"), "--lr must be a positive number"),
        ("hidden", (0,), "--hidden"),
        ("strategy", "adam", "unknown strategy"),
    ],
)
def test_bad_config(field: str, value: Any, message: str) -> None:
    cfg = TrainConfig(**{field: value})
    with pytest.raises(ConfigError, match=message):
        cfg.validate()


def test_progress_receives_every_step(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    x, y, xv, yv = mnist_normalized
    calls: list[str] = []

    class Recorder:
        def start_epoch(self, epoch: int, steps: int) -> None:
            calls.append(f"start {epoch} {steps}")

        def step(self, loss: float) -> None:
            calls.append("step")

        def end_epoch(self, result: Any) -> None:
            calls.append(f"end {result.epoch}")

    train(x[:130], y[:130], xv[:10], yv[:10], TrainConfig(epochs=1), Recorder())
    assert calls == ["start 1 3", "step", "step", "step", "end 1"]  # 130 rows / 64 = 3 steps


def test_save_writes_weights_atomically(
    tmp_path: Path, mnist_normalized: tuple[np.ndarray, ...]
) -> None:
    x, y, xv, yv = mnist_normalized
    result = train(x[:640], y[:640], xv[:100], yv[:100], TrainConfig(epochs=1))
    path = save_params(tmp_path / "w.npz", result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temporary left behind
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["w1"], result.params.layers[0].w)
        assert str(saved["config_loss"]) == "cross-entropy"
