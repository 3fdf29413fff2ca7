"""Mini-batch SGD on the lesson's net, with any of the three strategies.

Pure: `train` takes normalized arrays and a `TrainConfig`, reports progress
through an optional `TrainProgress` and returns a `TrainResult`. It never prints.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fcgrad import strategies
from fcgrad.errors import ConfigError, DataError, FcgradError, TrainingDiverged
from fcgrad.fileio import atomic_path
from fcgrad.nn import losses, model
from fcgrad.nn.losses import Loss
from fcgrad.nn.model import Params


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
    """The configuration, one `EpochResult` per epoch, the trained parameters, and the final
    `Checkpoint` (what `--save` writes)."""

    config: TrainConfig
    epochs: list[EpochResult]
    params: Params
    checkpoint: Checkpoint

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
    """Receives progress; `fcgrad.cli.render` implements it with a rich progress bar."""

    def start_epoch(self, epoch: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, result: EpochResult) -> None: ...


def evaluate(params: Params, x: np.ndarray, labels: np.ndarray, loss: Loss) -> tuple[float, float]:
    """(loss, accuracy) of the net on a whole set; x (N, 784) float32, labels (N,) int64."""
    out = model.forward(params, x)
    return losses.value(loss, out, losses.targets(loss, labels, x.dtype)), losses.accuracy(
        loss, out, labels
    )


class TrainingInterrupted(FcgradError):
    """Training was asked to stop (Ctrl-C); `checkpoint` holds everything to resume it."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        super().__init__(f"training interrupted at epoch {c.epoch}, step {c.step}")
        self.checkpoint = checkpoint


@dataclasses.dataclass
class Checkpoint:
    """A run's exact state at a step boundary: continuing from it gives the same weights as
    never stopping.

    `epoch` is the epoch in progress (config.epochs + 1 once finished), `step` the steps of
    it already taken, `rng_state` the shuffling Generator's state at that epoch's start
    (so its permutation can be drawn again), `loss_sum` the sum of its steps' losses so far,
    `history` the finished epochs, `mean`/`std` the normalization statistics used.
    Plain SGD keeps no optimizer state beyond the weights.
    """

    config: TrainConfig
    params: Params
    epoch: int
    step: int
    rng_state: Mapping[str, Any]
    loss_sum: float
    history: list[EpochResult]
    mean: float
    std: float

    def save(self, path: str | Path) -> Path:
        """Write the weights (w1, b1, ...) and the state (JSON) to `path` (.npz), atomically."""
        meta = {
            "config": losses.config_dict(self.config),
            "epoch": self.epoch,
            "step": self.step,
            "rng_state": self.rng_state,
            "loss_sum": self.loss_sum,
            "mean": self.mean,
            "std": self.std,
            "history": [dataclasses.asdict(e) for e in self.history],
        }
        arrays: dict[str, Any] = {**self.params.named(), "checkpoint": np.array(json.dumps(meta))}
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """Read a checkpoint written by `save`; DataError naming the file when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["checkpoint"]))
                arrays = [data[f"{k}{i}"] for i in range(1, len(data.files) // 2 + 1) for k in "wb"]
            cfg = dict(meta["config"], loss=Loss(meta["config"]["loss"]))
            cfg["hidden"] = tuple(cfg["hidden"])
            return cls(
                TrainConfig(**cfg),
                Params.from_arrays(arrays),
                meta["epoch"],
                meta["step"],
                meta["rng_state"],
                meta["loss_sum"],
                [EpochResult(**e) for e in meta["history"]],
                meta["mean"],
                meta["std"],
            )
        except (OSError, KeyError, ValueError, TypeError):
            raise DataError(
                f"{path} is not an fcgrad checkpoint (an .npz written by `fcgrad train --save`)"
            ) from None


class _Stop(Exception):
    """Raised inside an epoch when `should_stop()` turns true after a step."""

    def __init__(self, step: int, loss_sum: float) -> None:
        self.step, self.loss_sum = step, loss_sum


def train(
    x_train: np.ndarray,
    labels_train: np.ndarray,
    x_valid: np.ndarray,
    labels_valid: np.ndarray,
    config: TrainConfig,
    progress: TrainProgress | None = None,
    *,
    resume: Checkpoint | None = None,
    should_stop: Callable[[], bool] | None = None,
    stats: tuple[float, float] = (float("nan"), float("nan")),
) -> TrainResult:
    """Train from kaiming init (or from `resume`) with shuffled mini-batch SGD; evaluate after
    every epoch.

    x_* are normalized (N, 784) float32; labels_* are (N,) int64 digits; `stats` the
    (mean, std) they were normalized with, kept in checkpoints. `should_stop` is asked
    after every step; when it answers True, TrainingInterrupted carries a Checkpoint.
    Raises ConfigError for unusable hyperparameters and TrainingDiverged, naming the
    epoch, the step and the learning rate, when the loss becomes NaN or inf.
    """
    config.validate()
    rng = np.random.default_rng(config.seed)
    if resume is None:
        params = model.init_params(
            [x_train.shape[1], *config.hidden, config.loss.n_out], rng, x_train.dtype.type
        )
        first, step, loss_sum, results = 1, 0, 0.0, []
    else:
        params = resume.params
        rng.bit_generator.state = resume.rng_state
        first, step, loss_sum, results = (
            resume.epoch,
            resume.step,
            resume.loss_sum,
            list(resume.history),
        )
    y_train = losses.targets(config.loss, labels_train, x_train.dtype)
    run = EpochRunner(
        config, strategies.get(config.strategy), params, x_train, y_train, rng, progress
    )
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss guard
        for epoch in range(first, config.epochs + 1):
            start_state = rng.bit_generator.state
            start = time.perf_counter()
            try:
                train_loss = run.epoch(
                    epoch, start_step=step, loss_sum=loss_sum, should_stop=should_stop
                )
            except _Stop as stop:
                ck = Checkpoint(
                    config, params, epoch, stop.step, start_state, stop.loss_sum, results, *stats
                )
                raise TrainingInterrupted(ck) from None
            step, loss_sum = 0, 0.0
            valid_loss, valid_acc = evaluate(params, x_valid, labels_valid, config.loss)
            result = EpochResult(
                epoch, train_loss, valid_loss, valid_acc, time.perf_counter() - start
            )
            results.append(result)
            if progress:
                progress.end_epoch(result)
    done = Checkpoint(
        config, params, config.epochs + 1, 0, rng.bit_generator.state, 0.0, results, *stats
    )
    return TrainResult(config, results, params, done)


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

    def epoch(
        self,
        epoch: int,
        *,
        start_step: int = 0,
        loss_sum: float = 0.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> float:
        """One shuffled pass of SGD steps (from `start_step` on, when resuming); returns the
        mean training loss of its steps. Raises _Stop at a step boundary when asked to."""
        cfg, n = self.config, self.x.shape[0]
        steps = -(-n // cfg.batch_size)
        if self.progress:
            self.progress.start_epoch(epoch, steps)
        order = self.rng.permutation(n)
        total = loss_sum
        for step in range(start_step, steps):
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
            if should_stop is not None and should_stop() and step + 1 < steps:
                raise _Stop(step + 1, total)
        mean: float = total / steps
        return mean
