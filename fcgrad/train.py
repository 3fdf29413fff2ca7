"""Mini-batch SGD on the lesson's net, with any of the three strategies.

Pure: `train` takes normalized arrays and a `TrainConfig`, reports progress
through an optional `TrainProgress` and returns a `TrainResult`. It never prints.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fcgrad import losses, model, strategies
from fcgrad.errors import ConfigError, TrainingDiverged
from fcgrad.fileio import atomic_path
from fcgrad.losses import Loss
from fcgrad.model import Params


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters. Defaults: the lesson's net with cross-entropy, 784-50-10.

    `lr` is the SGD learning rate; None takes the loss's `default_lr` (0.1 for
    cross-entropy, 0.01 for mse). `seed` seeds init and the per-epoch shuffles.
    """

    strategy: str = "tape"
    loss: Loss = Loss.cross_entropy
    hidden: tuple[int, ...] = (50,)
    epochs: int = 5
    batch_size: int = 64
    lr: float = None  # type: ignore[assignment]  # filled in by __post_init__
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr is None:
            object.__setattr__(self, "lr", self.loss.default_lr)

    def validate(self) -> None:
        """Raise ConfigError naming the first option that cannot be used."""
        strategies.get(self.strategy)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"--hidden sizes must be at least 1, got {list(self.hidden)}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")


@dataclasses.dataclass(frozen=True)
class EpochResult:
    """One epoch: mean training loss over its steps, validation loss and accuracy, seconds."""

    epoch: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    seconds: float


@dataclasses.dataclass
class TrainResult:
    """The configuration, one `EpochResult` per epoch, and the trained parameters."""

    config: TrainConfig
    epochs: list[EpochResult]
    params: Params

    @property
    def valid_accuracy(self) -> float:
        return self.epochs[-1].valid_accuracy if self.epochs else float("nan")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (without the weights)."""
        cfg = losses.config_dict(self.config)
        return {
            "config": cfg,
            "epochs": [dataclasses.asdict(e) for e in self.epochs],
            "valid_accuracy": self.valid_accuracy,
        }


class TrainProgress(Protocol):
    """Receives progress; `fcgrad.render` implements it with a rich progress bar."""

    def start_epoch(self, epoch: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, result: EpochResult) -> None: ...


def evaluate(params: Params, x: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[float, float]:
    """(loss, accuracy) of the net on a whole set; x (N, 784) float32, labels (N,) int64."""
    out = model.forward(params, x)
    return losses.value(loss, out, losses.targets(loss, labels, x.dtype)), losses.accuracy(
        loss, out, labels
    )


def train(
    x_train: np.ndarray,
    labels_train: np.ndarray,
    x_valid: np.ndarray,
    labels_valid: np.ndarray,
    config: TrainConfig,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train from kaiming init with shuffled mini-batch SGD; evaluate after every epoch.

    x_* are normalized (N, 784) float32; labels_* are (N,) int64 digits.
    Raises ConfigError for unusable hyperparameters and TrainingDiverged, naming
    the epoch, the step and the learning rate, when the loss becomes NaN or inf.
    """
    config.validate()
    rng = np.random.default_rng(config.seed)
    params = model.init_params(
        [x_train.shape[1], *config.hidden, config.loss.n_out], rng, x_train.dtype.type
    )
    run = EpochRunner(
        config,
        strategies.get(config.strategy),
        params,
        x_train,
        losses.targets(config.loss, labels_train, x_train.dtype),
        rng,
        progress,
    )
    results = []
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss guard
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            train_loss = run.epoch(epoch)
            valid_loss, valid_acc = evaluate(params, x_valid, labels_valid, config.loss)
            result = EpochResult(
                epoch, train_loss, valid_loss, valid_acc, time.perf_counter() - start
            )
            results.append(result)
            if progress:
                progress.end_epoch(result)
    return TrainResult(config, results, params)


@dataclasses.dataclass
class EpochRunner:
    """The state an SGD epoch needs: the strategy, the parameters, the data, the shuffling RNG.

    `epoch(k)` runs one shuffled pass in place on `params` (also timed by `fcgrad bench`).
    """

    config: TrainConfig
    strategy: Any
    params: Params
    x: np.ndarray
    y: np.ndarray
    rng: np.random.Generator
    progress: TrainProgress | None

    def epoch(self, epoch: int) -> float:
        """One shuffled pass of SGD steps; returns the mean training loss of its steps."""
        cfg, n = self.config, self.x.shape[0]
        steps = -(-n // cfg.batch_size)
        if self.progress:
            self.progress.start_epoch(epoch, steps)
        order = self.rng.permutation(n)
        total = 0.0
        for step in range(steps):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            g = self.strategy.value_and_grads(self.params, self.x[idx], self.y[idx], cfg.loss)
            if not np.isfinite(g.loss):
                raise TrainingDiverged(
                    f"the training loss became {g.loss} at epoch {epoch}, step {step + 1} "
                    f"with learning rate {cfg.lr}; try a smaller --lr"
                )
            model.sgd_step(self.params, g.params, cfg.lr)
            total += g.loss
            if self.progress:
                self.progress.step(g.loss)
        return total / steps


def save_params(path: str | Path, result: TrainResult) -> Path:
    """Write the trained weights (w1, b1, ...) and the configuration to `path` (.npz), atomically.

    Raises FcgradError when the folder cannot be written.
    """
    path = Path(path)
    config: dict[str, Any] = result.to_dict()["config"]  # type: ignore[assignment]
    arrays: dict[str, Any] = {**result.params.named()}
    arrays.update({f"config_{k}": np.asarray(v) for k, v in config.items()})
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return path
