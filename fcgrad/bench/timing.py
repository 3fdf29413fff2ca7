"""Timings of the lesson's workload: each strategy against a GEMM reference and other libraries.

Like the lesson's `time(repeating:)`, each case is run `repeat` times after `warmup`
untimed runs; the runs are interleaved (case by case within each repetition), so a
slow patch of the machine hits every case alike. Phases:

- `forward`: the loss only;
- `fwd+bwd all`: the loss and every gradient, the input's included (five arrays for
  784-50-1, as the lesson's benchmark computes);
- `fwd+bwd weights`: the loss and the parameters' gradients (what training needs);
- with `train_epoch`, `batch step` (the same on one batch of `batch_size` rows, in ms
  per step), `train epoch` (a whole SGD epoch at that batch size, beside its GEMM floor
  and the peers' epochs) and `train epoch (one core busy)`: see `fcgrad.bench.epochs`.

The full-batch phases run on the thread policy's `full` BLAS threads, the training
phases on its `batch` threads (`fcgrad.engine.threads`; `threads` fixes both).

The *GEMM reference* runs the same matrix products and nothing else (x @ w1, h @ w2
forward; h.T @ g2, g2 @ w2.T, x.T @ g1 and, for `all`, g1 @ w1.T backward): the
practical limit of any implementation on this machine. Ratios are of medians: to
the reference, and to the fastest case of the phase. FLOPs are counted from the
layer sizes (2 m n k per matrix product, one per element for bias, ReLU and mask);
GFLOP/s uses the median. Peak memory is what numpy allocates during one run
(tracemalloc), in MB; it is not measured for torch and jax, whose allocators it
cannot see.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np

from fcgrad import strategies
from fcgrad.bench import peers
from fcgrad.checking.net_gradcheck import rows_to_use
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.nn import losses
from fcgrad.nn.activations import Activation
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import Loss
from fcgrad.nn.memory import check_fits, pass_bytes
from fcgrad.nn.net import Net, NetConfig
from fcgrad.nn.params import Params
from fcgrad.progress import NoSteps, Steps

PHASES = ("forward", "fwd+bwd all", "fwd+bwd weights")
REFERENCE = "gemm reference"
STEP_PHASE = "batch step"
STEPS_PER_RUN = 100  # batch steps per timed run: one step at batch 64 is below 0.1 ms


@dataclasses.dataclass(frozen=True)
class BenchConfig(NetConfig):
    """What to time: strategies, peers (`compare`), loss, hidden sizes, repetitions, rows
    (None = all), seed, whether to time one training epoch at `batch_size`, the
    activation between the dense layers, and BLAS threads (None: the thread policy)."""

    strategies: tuple[str, ...] = strategies.NAMES
    loss: Loss = Loss.mse
    hidden: tuple[int, ...] = (50,)
    repeat: int = 10
    warmup: int = 1
    rows: int | None = None
    seed: int = 0
    compare: tuple[str, ...] = ()
    train_epoch: bool = False
    batch_size: int = 64
    activation: Activation = Activation.relu
    threads: int | None = None

    def validate(self) -> None:
        """Raise ConfigError naming (as `param`) the first unusable option."""
        for s in self.strategies:
            strategies.get(s)
        peers.check_available(self.compare)
        self.check_at_least(repeat=1, warmup=0, batch_size=1, rows=1)
        self.policy()

    def policy(self) -> ThreadPolicy:
        """The BLAS thread policy: `threads` for everything, else the default."""
        return ThreadPolicy.fixed_at(self.threads)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Times of one implementation (the reference, a strategy or a peer) in one phase, in ms."""

    implementation: str
    phase: str
    times_ms: tuple[float, ...]
    flops: int
    ratio: float  # median over the fastest median of the phase
    ratio_to_reference: float | None  # median over the GEMM reference's median of the phase
    peak_mb: float | None = None

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
    """Every `Timing`; `n_rows` and `sizes` describe the workload, `threads` the policy."""

    config: BenchConfig
    n_rows: int
    sizes: tuple[int, ...]
    timings: list[Timing]
    blas: str = dataclasses.field(default_factory=lambda: blas_description())
    threads: ThreadPolicy = dataclasses.field(default_factory=ThreadPolicy.default)

    def busy_slowdowns(self) -> dict[str, float]:
        """Each implementation's median epoch with one core busy over its quiet one."""
        from fcgrad.bench.epochs import BUSY_PHASE, EPOCH_PHASE

        med = {(t.implementation, t.phase): t.median_ms for t in self.timings}
        return {
            impl: ms / med[(impl, EPOCH_PHASE)]
            for (impl, phase), ms in med.items()
            if phase == BUSY_PHASE and (impl, EPOCH_PHASE) in med
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "config": losses.config_dict(self.config),
            "blas": self.blas,
            "threads": self.threads.to_dict(),
            "busy_slowdowns": self.busy_slowdowns(),
            "rows_used": self.n_rows,
            "sizes": list(self.sizes),
            "timings": [t.to_dict() for t in self.timings],
        }


def blas_description() -> str:
    """The BLAS numpy runs on and its kernel, e.g. 'openblas SkylakeX' (the threads it runs
    on are the thread policy's, `BenchResult.threads`)."""
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    parts = [f"{p['internal_api']} {p.get('architecture') or '?'}" for p in pools]
    return "; ".join(parts) or "unknown BLAS"


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


def gemm_flops(sizes: Sequence[int], n: int, phase: str) -> int:
    """The matrix-product FLOPs alone of a phase (what the GEMM reference does)."""
    layers = list(itertools.pairwise(sizes))
    forward = sum(2 * n * k * m for k, m in layers)
    if phase == "forward":
        return forward
    input_side = sum(
        2 * n * k * m for i, (k, m) in enumerate(layers) if i > 0 or phase == PHASES[1]
    )
    return forward + forward + input_side  # forward, weight gradients, input-side gradients


def gemm_reference(params: Params, x: np.ndarray) -> dict[str, Callable[[], object]]:
    """The phases' matrix products alone, on arrays of the workload's shapes and dtype, each
    written into a preallocated result (no allocation, no page faults): the practical limit."""
    ws = [layer.w for layer in params.layers]
    acts = [x]
    for w in ws[:-1]:
        acts.append(acts[-1] @ w)
    outs = [a @ w for a, w in zip(acts, ws)]
    fwd_out = [np.empty_like(o) for o in outs]
    w_grads = [np.empty_like(w) for w in ws]
    in_grads = [np.empty_like(a) for a in acts]

    def forward() -> object:
        for a, w, o in zip(acts, ws, fwd_out):
            np.matmul(a, w, out=o)
        return fwd_out

    def backward(input_grad: bool) -> object:
        forward()
        for i in range(len(ws) - 1, -1, -1):
            np.matmul(acts[i].T, outs[i], out=w_grads[i])
            if i > 0 or input_grad:
                np.matmul(outs[i], ws[i].T, out=in_grads[i])
        return w_grads

    return {
        "forward": forward,
        "fwd+bwd all": lambda: backward(True),
        "fwd+bwd weights": lambda: backward(False),
    }


def _strategy_phases(
    name: str, net: Net, params: Params, x: np.ndarray, y: np.ndarray
) -> dict[str, Callable[[], object]]:
    mod = strategies.get(name)
    ws = strategies.Workspace()  # repeated full-batch passes reuse the input gradient's buffer
    return {
        "forward": lambda: mod.value(net, params, x, y),
        "fwd+bwd all": lambda: mod.value_and_grads(
            net, params, x, y, input_grad=True, workspace=ws
        ),
        "fwd+bwd weights": lambda: mod.value_and_grads(net, params, x, y, input_grad=False),
    }


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _peak_mb(fn: Callable[[], object]) -> float:
    """MB numpy allocates at the peak of one run of `fn` (tracemalloc sees numpy's allocations)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bench(
    x: np.ndarray, labels: np.ndarray, config: BenchConfig, progress: Steps | None = None
) -> BenchResult:
    """Time the reference, each strategy and each peer on normalized x (N, 784) float32 and
    labels (N,) int64, then (with `train_epoch`) one SGD epoch of each. `progress` hears of
    every run, timed or warm-up.

    Raises ConfigError for unusable options or a peer that is not installed.
    """
    from fcgrad.bench import epochs  # (it builds on this module)

    config.validate()
    policy = config.policy()
    progress = progress or NoSteps()
    n = rows_to_use(config.rows, x.shape[0])
    x, labels = (x, labels) if n == x.shape[0] else (x[:n], labels[:n])
    net = config.net(x.shape[1])
    check_fits(2 * pass_bytes(net, n) + x.nbytes, f"timing a {net.describe()} net on {n:,} rows")
    sizes = net.sizes
    params = init_params(net, config.seed)
    y = losses.targets(config.loss, labels, x.dtype)
    cases: dict[str, dict[str, Callable[[], object]]] = {REFERENCE: gemm_reference(params, x)}
    for s in config.strategies:
        cases[s] = _strategy_phases(s, net, params, x, y)
    for p in config.compare:
        cases[p] = peers.phases(p, net, params, x, y)
    runs = {(impl, phase): fn for impl, by_phase in cases.items() for phase, fn in by_phase.items()}
    progress.start(_runs_in_all(config, len(runs)))
    with policy.full_batch():
        times = interleaved(runs, config.repeat, config.warmup, progress)
    timings = _timings(
        times, sizes, n, numpy_impls={REFERENCE, *config.strategies, "numpy", "autograd"}, runs=runs
    )
    if config.train_epoch:
        timings += epochs.step_timings(net, params, x, y, config, progress, policy)
        timings += epochs.epoch_timings(net, params, x, y, config, progress, policy)
    return BenchResult(config, n, sizes, timings, threads=policy)


def _runs_in_all(config: BenchConfig, cases: int) -> int:
    """How many runs `bench` makes: `cases` per repetition, then the training phases'."""
    from fcgrad.bench.epochs import epoch_cases, epoch_repeats

    total = (config.warmup + config.repeat) * cases
    if config.train_epoch:
        total += (config.warmup + config.repeat) * len(config.strategies)
        total += (1 + epoch_repeats(config)) * sum(epoch_cases(config))
    return total


SETTLE_S = 0.1  # untimed pause after a peer: its spinning worker threads go idle


def interleaved(
    runs: dict[tuple[str, str], Callable[[], object]],
    repeat: int,
    warmup: int,
    progress: Steps,
) -> dict[tuple[str, str], list[float]]:
    """Each case once per repetition, in turn; the first `warmup` repetitions untimed.

    After a peer's run (torch, jax), an untimed pause of SETTLE_S lets its worker
    threads, which spin for a while when idle, stop competing for the cores.
    """
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    for rep in range(warmup + repeat):
        for key, fn in runs.items():
            progress.step(f"{key[0]}: {key[1]} ({'warm-up' if rep < warmup else rep - warmup + 1})")
            t = _timed(fn)
            if rep >= warmup:
                times[key].append(t)
            if key[0] in ("torch", "jax"):
                time.sleep(SETTLE_S)
    return times


def _timings(
    times: dict[tuple[str, str], list[float]],
    sizes: Sequence[int],
    n: int,
    numpy_impls: set[str],
    runs: dict[tuple[str, str], Callable[[], object]],
) -> list[Timing]:
    med = {k: statistics.median(v) for k, v in times.items()}
    fastest = {p: min(m for (_, ph), m in med.items() if ph == p) for p in PHASES}
    out = []
    for (impl, phase), ts in times.items():
        flops = (
            gemm_flops(sizes, n, phase)
            if impl == REFERENCE
            else count_flops(sizes, n, backward=phase != "forward", input_grad=phase == PHASES[1])
        )
        peak = _peak_mb(runs[(impl, phase)]) if impl in numpy_impls else None
        ref = med[(REFERENCE, phase)]
        out.append(
            Timing(
                impl,
                phase,
                tuple(ts),
                flops,
                med[(impl, phase)] / fastest[phase],
                med[(impl, phase)] / ref,
                peak,
            )
        )
    return out
