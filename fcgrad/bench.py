"""Timing of each strategy's forward and forward+backward pass (the lesson's `time(repeating:)`).

Runs are interleaved (strategy by strategy within each repetition) so that a
slow patch of the machine hits every strategy alike. The forward+backward pass
computes all gradients of the lesson's net, the input's included (five arrays
for 784-50-1), as the lesson's benchmark does. FLOPs are counted from the layer
sizes: 2 m n k per matrix product plus one per element for bias, ReLU and its
mask; GFLOP/s uses the median time.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from fcgrad import losses, model, strategies
from fcgrad.errors import ConfigError
from fcgrad.gradcheck import rows_to_use
from fcgrad.losses import Loss

PHASES = ("forward", "forward+backward")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Strategies, loss, hidden sizes, repetitions, warm-up runs, rows (None = all), seed."""

    strategies: tuple[str, ...] = strategies.NAMES
    loss: Loss = Loss.mse
    hidden: tuple[int, ...] = (50,)
    repeat: int = 10
    warmup: int = 1
    rows: int | None = None
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable option."""
        for s in self.strategies:
            strategies.get(s)
        if self.repeat < 1:
            raise ConfigError(f"--repeat must be at least 1, got {self.repeat}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.rows is not None and self.rows < 1:
            raise ConfigError(f"--rows must be at least 1, got {self.rows}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"--hidden sizes must be at least 1, got {list(self.hidden)}")


@dataclasses.dataclass(frozen=True)
class Timing:
    """Times of one strategy and phase, in ms, with their summary and derived rates."""

    strategy: str
    phase: str
    times_ms: tuple[float, ...]
    flops: int
    ratio: float  # median over the fastest median of the same phase

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def gflops(self) -> float:
        """Counted FLOPs / median time, in GFLOP/s."""
        return self.flops / (self.median_ms * 1e6)

    def to_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d.update(
            mean_ms=self.mean_ms,
            min_ms=self.min_ms,
            max_ms=self.max_ms,
            median_ms=self.median_ms,
            gflops=self.gflops,
        )
        return d


@dataclasses.dataclass
class BenchResult:
    """One `Timing` per strategy and phase; `n_rows` and `sizes` describe the workload."""

    config: BenchConfig
    n_rows: int
    sizes: tuple[int, ...]
    timings: list[Timing]

    def to_dict(self) -> dict[str, object]:
        cfg = losses.config_dict(self.config)
        return {
            "config": cfg,
            "rows_used": self.n_rows,
            "sizes": list(self.sizes),
            "timings": [t.to_dict() for t in self.timings],
        }


def count_flops(sizes: Sequence[int], n: int, *, backward: bool, input_grad: bool = True) -> int:
    """FLOPs of the net with layer widths `sizes` on `n` rows (the loss's few per row ignored).

    Forward: 2 n k m per layer (k -> m) plus n m for the bias and n m per ReLU.
    Backward: 2 n k m for the weight gradient, 2 n k m for the input-side
    gradient (skipped for the first layer unless `input_grad`), n m for the bias
    gradient and n m per ReLU mask.
    """
    layers = list(itertools.pairwise(sizes))
    total = sum(2 * n * k * m + n * m for k, m in layers) + sum(n * m for _, m in layers[:-1])
    if backward:
        total += sum(2 * n * k * m + n * m for k, m in layers)
        total += sum(2 * n * k * m for i, (k, m) in enumerate(layers) if i > 0 or input_grad)
        total += sum(n * m for _, m in layers[:-1])
    return total


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def bench(x: np.ndarray, labels: np.ndarray, config: BenchConfig) -> BenchResult:
    """Time each strategy on normalized x (N, 784) float32 and labels (N,) int64.

    Raises ConfigError for unusable options.
    """
    config.validate()
    n = rows_to_use(config.rows, x.shape[0])
    x, labels = x[:n], labels[:n]
    sizes = (x.shape[1], *config.hidden, config.loss.n_out)
    params = model.init_params(sizes, config.seed)
    y = losses.targets(config.loss, labels, x.dtype)
    runs = {}
    for s in config.strategies:
        mod = strategies.get(s)
        runs[(s, PHASES[0])] = lambda m=mod: m.value(params, x, y, config.loss)
        runs[(s, PHASES[1])] = lambda m=mod: m.value_and_grads(
            params, x, y, config.loss, input_grad=True
        )
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    for rep in range(config.warmup + config.repeat):
        for key, fn in runs.items():
            t = _timed(fn)
            if rep >= config.warmup:
                times[key].append(t)
    fastest = {p: min(statistics.median(times[(s, p)]) for s in config.strategies) for p in PHASES}
    timings = [
        Timing(
            s,
            p,
            tuple(times[(s, p)]),
            count_flops(sizes, n, backward=p != PHASES[0]),
            statistics.median(times[(s, p)]) / fastest[p],
        )
        for s in config.strategies
        for p in PHASES
    ]
    return BenchResult(config, n, sizes, timings)
