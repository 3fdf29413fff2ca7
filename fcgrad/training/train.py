"""Mini-batch training of the described net, with any strategy and optimizer.

Pure: `train` takes normalized arrays and a `TrainConfig`, reports progress
through an optional `TrainProgress` and returns a `TrainResult`. It never prints.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from fcgrad import strategies
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.errors import ConfigError, FcgradError, TrainingDiverged
from fcgrad.nn import losses, optimizers
from fcgrad.nn.init import init_params
from fcgrad.nn.memory import check_fits, eval_chunk_rows, pass_bytes, train_bytes
from fcgrad.nn.net import Net, forward
from fcgrad.nn.params import Packed, Params
from fcgrad.strategies import Strategy, Workspace
from fcgrad.training.checkpoint import Checkpoint
from fcgrad.training.config import EpochResult, TrainConfig

__all__ = [
    "Checkpoint",
    "EpochResult",
    "EpochRunner",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingInterrupted",
    "check_memory",
    "evaluate",
    "train",
]


CHANCE = 0.15  # valid accuracy at or below this is about chance: 10% for ten digits


@dataclasses.dataclass
class TrainResult:
    """The configuration, one `EpochResult` per epoch, the trained parameters, the final
    `Checkpoint` (what `--save` writes) and the BLAS thread policy it ran under."""

    config: TrainConfig
    epochs: list[EpochResult]
    params: Params
    checkpoint: Checkpoint
    threads: ThreadPolicy = dataclasses.field(default_factory=ThreadPolicy.default)

    @property
    def valid_accuracy(self) -> float:
        return self.epochs[-1].valid_accuracy if self.epochs else float("nan")

    @property
    def at_chance(self) -> bool:
        """Whether the run ended at about chance (valid accuracy at most CHANCE): it learned
        nothing, usually from a learning rate too large to descend."""
        return bool(self.epochs) and self.valid_accuracy <= CHANCE

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (without the weights); `at_chance` as in the property."""
        return {
            "config": losses.config_dict(self.config),
            "epochs": [dataclasses.asdict(e) for e in self.epochs],
            "valid_accuracy": self.valid_accuracy,
            "at_chance": self.at_chance,
            "threads": self.threads.to_dict(),
        }


class TrainProgress(Protocol):
    """Receives progress; `fcgrad.cli.render` implements it with a rich progress bar."""

    def start_epoch(self, epoch: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, result: EpochResult) -> None: ...


def _check_labels(labels: np.ndarray, name: str) -> None:
    """ConfigError (param `name`) unless `labels` are integer digits 0..9: a label of 10
    would index past cross-entropy's ten outputs, or train mse towards no digit."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ConfigError(f"{name} must be integer digits 0..9, not {labels.dtype}", param=name)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise ConfigError(
            f"{name} must be digits 0..9, got values from {int(labels.min())} to "
            f"{int(labels.max())}",
            param=name,
        )


MNIST_TRAIN_ROWS = 60_000


def check_memory(config: TrainConfig, n_in: int = 784, rows: int = MNIST_TRAIN_ROWS) -> None:
    """ConfigError when training `config`'s net on `rows` rows needs more memory than the
    machine has available (`fcgrad.nn.memory.train_bytes`); checked before any work. A
    batch holds at most `rows` rows, whatever `batch_size` says; the error names
    `batch_size` when the batch's pass is most of the need, else `hidden`."""
    net = config.net(n_in)
    batch = min(config.batch_size, rows)
    needed = train_bytes(net, batch, config.optimizer.value)
    by_batch = pass_bytes(net, batch) > needed / 2
    check_fits(
        needed,
        f"training a {net.describe()} net with {config.optimizer.value}"
        + (f" in batches of {batch:,} rows" if by_batch else ""),
        "batch_size" if by_batch else "hidden",
    )


def evaluate(params: Params, x: np.ndarray, labels: np.ndarray, net: Net) -> tuple[float, float]:
    """(loss, accuracy) of the net described by `net` on a whole set; x (N, 784) float32,
    labels (N,) int64. Evaluated in chunks of `memory.eval_chunk_rows(net)` rows (all
    10,000 valid images at once for the lesson's net), so that a wide net's activations
    never need N rows at once."""
    chunk = eval_chunk_rows(net)
    if x.shape[0] <= chunk:
        out = forward(net, params, x)
        y = losses.targets(net.loss, labels, x.dtype)
        return losses.value(net.loss, out, y), losses.accuracy(net.loss, out, labels)
    total, correct = 0.0, 0
    for start in range(0, x.shape[0], chunk):
        xs, ls = x[start : start + chunk], labels[start : start + chunk]
        out = forward(net, params, xs)
        total += losses.value(net.loss, out, losses.targets(net.loss, ls, x.dtype)) * len(ls)
        correct += int(np.sum(net.loss.row.predict(out) == ls))
    return total / x.shape[0], correct / x.shape[0]


class TrainingInterrupted(FcgradError):
    """Training was asked to stop (Ctrl-C); `checkpoint` holds everything to resume it."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        super().__init__(f"training interrupted at epoch {c.epoch}, step {c.step}")
        self.checkpoint = checkpoint


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
    threads: ThreadPolicy | None = None,
) -> TrainResult:
    """Train from the activation's init (or from `resume`) with shuffled mini-batches and the
    configured optimizer; evaluate after every epoch.

    x_* are normalized (N, 784) float32; labels_* are (N,) int64 digits; `stats` the
    (mean, std) they were normalized with, kept in checkpoints. `should_stop` is asked
    after every step; when it answers True, TrainingInterrupted carries a Checkpoint.
    `threads` is the BLAS thread policy (default `ThreadPolicy.default()`: 1 thread for
    the batch steps, every core for each epoch's evaluation); it changes no result.
    Raises ConfigError for unusable hyperparameters or a net too big for the memory
    available (`fcgrad.nn.memory`, before any work), and TrainingDiverged, naming the
    epoch, the step and the learning rate, when the loss becomes NaN or inf (in the
    first epoch of a resumed run, also the largest weight it resumed from).
    """
    config.validate()
    for name, labels in (("labels_train", labels_train), ("labels_valid", labels_valid)):
        _check_labels(labels, name)
    threads = threads or ThreadPolicy.default()
    net = config.net(x_train.shape[1])
    check_memory(config, x_train.shape[1], x_train.shape[0])
    rng = np.random.default_rng(config.seed)
    if resume is None:
        params = init_params(net, rng, x_train.dtype.type)
        first, step, loss_sum, results = 1, 0, 0.0, []
    else:
        net.check(resume.params)
        resume.check_position(x_train.shape[0])
        params = resume.params
        largest = max(float(np.max(np.abs(a), initial=0.0)) for a in params.arrays())
        rng.bit_generator.state = resume.rng_state
        first, step, loss_sum = resume.epoch, resume.step, resume.loss_sum
        results = list(resume.history)
    optimizer = optimizers.make(config.optimizer, params, config.hyper)
    if resume is not None:
        optimizer.load(resume.optimizer)
    y_train = losses.targets(config.loss, labels_train, x_train.dtype)
    run = EpochRunner(
        config, strategies.get(config.strategy), net, params, optimizer, x_train, y_train, rng
    )
    run.progress = progress

    def checkpoint(epoch: int, step: int, state: Mapping[str, Any], loss_sum: float) -> Checkpoint:
        fixed = threads.batch if threads.fixed else None
        return Checkpoint(
            config, params, epoch, step, state, loss_sum, results, *stats, optimizer.state(), fixed
        )

    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss guard
        for epoch in range(first, config.epochs + 1):
            start_state = rng.bit_generator.state
            start = time.perf_counter()
            try:
                with threads.batch_steps():
                    train_loss = run.epoch(
                        epoch, start_step=step, loss_sum=loss_sum, should_stop=should_stop
                    )
            except _Stop as stop:
                raise TrainingInterrupted(
                    checkpoint(epoch, stop.step, start_state, stop.loss_sum)
                ) from None
            except TrainingDiverged as e:
                if resume is None or epoch != first:
                    raise
                raise TrainingDiverged(
                    f"{e} (the run resumed from weights as large as {largest:.3g}, which may be "
                    "the cause)"
                ) from None
            step, loss_sum = 0, 0.0
            with threads.full_batch():
                valid_loss, valid_acc = evaluate(params, x_valid, labels_valid, net)
            seconds = time.perf_counter() - start
            results.append(EpochResult(epoch, train_loss, valid_loss, valid_acc, seconds))
            if progress:
                progress.end_epoch(results[-1])
    done = checkpoint(config.epochs + 1, 0, rng.bit_generator.state, 0.0)
    return TrainResult(config, results, params, done, threads)


@dataclasses.dataclass
class EpochRunner:
    """The state an epoch needs: the strategy, the net and its parameters, the optimizer,
    the data, the shuffling RNG.

    `epoch(k)` runs one shuffled pass in place on `params` (also timed by `fcgrad bench`).
    The work around a step's products is done once: `params`' arrays are moved into one
    buffer (`Packed.adopt`: `params.layers` is rebound to its views, so an array taken out
    of `params` before holds the starting values), the strategy writes the
    gradients into a `Workspace`'s packed buffers, and the optimizer updates them all with
    one call per operation (`step_packed`); each batch is gathered into a reused buffer.
    """

    config: TrainConfig
    strategy: Strategy
    net: Net
    params: Params
    optimizer: optimizers.Rule
    x: np.ndarray
    y: np.ndarray
    rng: np.random.Generator
    progress: TrainProgress | None = None
    _batches: dict[int, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )
    _workspace: Workspace = dataclasses.field(default_factory=Workspace, init=False, repr=False)

    def __post_init__(self) -> None:
        self._packed = Packed.adopt(self.params) if Packed.can_pack(self.params) else None

    def _update(self, grads: Params) -> None:
        """The optimizer's step: on the packed buffers when the parameters are still this
        runner's pack and the gradients the workspace's, else array by array."""
        mine = self._packed
        if mine is not None and mine.holds(self.params):
            packed = self._workspace.gradients(self.params)
            if packed.holds(grads):
                self.optimizer.step_packed(mine.buffer, packed.buffer)
                return
        self.optimizer.step(self.params, grads)

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x[idx], y[idx]), each gathered with one `take` into a buffer that the next batch
        of as many rows reuses (a strategy keeps no reference to its batch). mode="clip"
        spares numpy's buffered copy of mode="raise"; `idx` comes from a permutation, so
        nothing is clipped."""
        bufs = self._batches.get(len(idx))
        if bufs is None:
            x, y = self.x, self.y
            bufs = (
                np.empty((len(idx), *x.shape[1:]), x.dtype),
                np.empty((len(idx), *y.shape[1:]), y.dtype),
            )
            self._batches[len(idx)] = bufs
        np.take(self.x, idx, axis=0, out=bufs[0], mode="clip")
        np.take(self.y, idx, axis=0, out=bufs[1], mode="clip")
        return bufs

    def epoch(
        self,
        epoch: int,
        *,
        start_step: int = 0,
        loss_sum: float = 0.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> float:
        """One shuffled pass of steps (from `start_step` on, when resuming); returns the mean
        training loss of its steps. Raises _Stop at a step boundary when asked to."""
        cfg, n = self.config, self.x.shape[0]
        steps = -(-n // cfg.batch_size)
        if self.progress:
            self.progress.start_epoch(epoch, steps)
        order = self.rng.permutation(n)
        total = loss_sum
        for step in range(start_step, steps):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x, y = self.batch(idx)
            g = self.strategy.value_and_grads(
                self.net, self.params, x, y, workspace=self._workspace
            )
            if not math.isfinite(g.loss):
                raise TrainingDiverged(
                    f"the training loss became {g.loss} at epoch {epoch}, step {step + 1} "
                    f"with learning rate {cfg.lr:g} ({cfg.optimizer.value}); try a smaller "
                    "learning rate"
                )
            self._update(g.params)
            total += g.loss
            if self.progress:
                self.progress.step(g.loss)
            if should_stop is not None and should_stop() and step + 1 < steps:
                raise _Stop(step + 1, total)
        mean: float = total / steps
        return mean
