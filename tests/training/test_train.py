"""Training on the real MNIST: the accuracy the issue promises, determinism, divergence, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.errors import ConfigError, DataError, TrainingDiverged
from fcgrad.nn.losses import Loss
from fcgrad.training.train import Checkpoint, TrainConfig, TrainingInterrupted, train


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


def test_save_writes_a_checkpoint_atomically(tmp_path: Path, mnist_normalized: Any) -> None:
    x, y, xv, yv = mnist_normalized
    cfg = TrainConfig(epochs=1)
    result = train(x[:640], y[:640], xv[:100], yv[:100], cfg, stats=(0.1307, 0.3081))
    path = result.checkpoint.save(tmp_path / "w.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temporary left behind
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["w1"], result.params.layers[0].w)
    back = Checkpoint.load(path)
    assert back.config == result.config and back.epoch == 2 and back.step == 0
    assert (back.mean, back.std) == (0.1307, 0.3081) and back.history == result.epochs


def test_not_a_checkpoint_is_a_data_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", a=np.ones(2))
    with pytest.raises(DataError, match="is not an fcgrad checkpoint"):
        Checkpoint.load(tmp_path / "x.npz")


@pytest.mark.parametrize("name", strategies.NAMES)
def test_interrupted_and_resumed_gives_the_same_weights(name: str, mnist_normalized: Any) -> None:
    x, y, xv, yv = (a[:3000] for a in mnist_normalized)
    cfg = TrainConfig(strategy=name, epochs=3)
    reference = train(x, y, xv, yv, cfg)
    calls = iter(range(10**6))
    with pytest.raises(TrainingInterrupted) as stopped:  # stop after 60 steps: inside epoch 2
        train(x, y, xv, yv, cfg, should_stop=lambda: next(calls) >= 59)
    ck = stopped.value.checkpoint
    assert (ck.epoch, ck.step) == (2, 13)  # 47 steps an epoch: 47 + 13 = 60
    resumed = train(x, y, xv, yv, cfg, resume=ck)
    for a, b in zip(resumed.params.arrays(), reference.params.arrays()):
        np.testing.assert_array_equal(a, b)  # bit for bit: same steps, same order
    assert [e.train_loss for e in resumed.epochs] == [e.train_loss for e in reference.epochs]
