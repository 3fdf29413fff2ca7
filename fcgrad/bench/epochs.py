"""bench's training phases (`--train-epoch`): one batch step, and whole SGD epochs beside
their references, quiet and with one core kept busy.

- `batch step`: each strategy's forward+backward (the weights' gradients) on one batch
  of `batch_size` rows, in ms per step.
- `train epoch`: one shuffled SGD epoch of each strategy (`fcgrad.training`'s
  `EpochRunner`, the gather and the updates included), beside the epoch's *GEMM floor*
  (`gemm reference`: the step's matrix products alone, into preallocated outputs, once
  per step: five for 784-50-10) and the peers compared: torch eager, `jax scan` (the
  epoch one jitted `lax.scan`) and `jax step` (a jitted step per batch).
- `train epoch (one core busy)`: the floor and each strategy again while a bounded helper
  process (`fcgrad.bench.busy`) spins on one core, so that the thread policy's effect
  on a busy machine is measured in the same run.

The floor and the strategies run under the thread policy's batch threads; the peers
under their own libraries' defaults. Ratios are of medians: to the fastest of the
phase and to the phase's floor.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import numpy as np

from fcgrad import strategies
from fcgrad.bench import peers
from fcgrad.bench.busy import one_core_busy
from fcgrad.bench.timing import (
    REFERENCE,
    STEP_PHASE,
    STEPS_PER_RUN,
    BenchConfig,
    Timing,
    count_flops,
    gemm_flops,
    gemm_reference,
    interleaved,
)
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.nn import optimizers
from fcgrad.nn.net import Net
from fcgrad.nn.params import Params
from fcgrad.progress import Steps

EPOCH_PHASE = "train epoch"
BUSY_PHASE = "train epoch (one core busy)"

Runs = dict[tuple[str, str], Callable[[], object]]


def epoch_repeats(config: BenchConfig) -> int:
    """Timed runs of each epoch case (after one warm-up): a third of `repeat`, at least 1."""
    return max(1, config.repeat // 3)


def epoch_cases(config: BenchConfig) -> tuple[int, int]:
    """How many cases the quiet and the busy epoch phases time."""
    peer_cases = ("torch" in config.compare) + 2 * ("jax" in config.compare)
    return 1 + len(config.strategies) + peer_cases, 1 + len(config.strategies)


def step_timings(
    net: Net,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    config: BenchConfig,
    progress: Steps,
    policy: ThreadPolicy,
) -> list[Timing]:
    """One training step's forward+backward (the weights' gradients) at `batch_size`, per
    strategy, in ms per step: each run takes STEPS_PER_RUN steps on different random
    batches, gathered beforehand so that only the strategies are timed."""
    rng = np.random.default_rng(config.seed)
    rows = rng.integers(0, x.shape[0], size=(STEPS_PER_RUN, config.batch_size))
    batches = [(x[r], y[r]) for r in rows]
    runs: Runs = {}
    for s in config.strategies:
        mod = strategies.get(s)

        def steps(mod: strategies.Strategy = mod) -> object:
            return [mod.value_and_grads(net, params, xb, yb) for xb, yb in batches]

        runs[(s, STEP_PHASE)] = steps
    with policy.batch_steps():
        times = interleaved(runs, config.repeat, config.warmup, progress)
    per_step = {k: [t / STEPS_PER_RUN for t in v] for k, v in times.items()}
    return _training_timings(per_step, params.sizes, config.batch_size, None)


def epoch_floor(params: Params, x: np.ndarray, batch_size: int) -> Callable[[], object]:
    """An epoch's GEMM floor: the matrix products of a step on `batch_size` rows (those of
    the weights' gradients, `gemm_reference`'s "fwd+bwd weights"), once per step."""
    step = gemm_reference(params, x[:batch_size])["fwd+bwd weights"]
    steps = -(-x.shape[0] // batch_size)

    def epoch() -> object:
        for _ in range(steps):
            step()
        return None

    return epoch


def epoch_timings(
    net: Net,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    config: BenchConfig,
    progress: Steps,
    policy: ThreadPolicy,
) -> list[Timing]:
    """The quiet and the busy epoch phases (see the module's docstring)."""
    ours: dict[str, Callable[[], object]] = {REFERENCE: epoch_floor(params, x, config.batch_size)}
    for s in config.strategies:
        ours[s] = _strategy_epoch(s, net, params, x, y, config)
    theirs: dict[str, Callable[[], object]] = {}
    lr = config.loss.default_lr
    if "torch" in config.compare:
        theirs["torch"] = peers.torch_epoch(net, params, x, y, config.batch_size, lr, config.seed)
    if "jax" in config.compare:
        theirs.update(peers.jax_epochs(net, params, x, y, config.batch_size, lr, config.seed))
    repeat = epoch_repeats(config)
    quiet_runs: Runs = {(k, EPOCH_PHASE): _under(policy, f) for k, f in ours.items()}
    quiet_runs.update({(k, EPOCH_PHASE): f for k, f in theirs.items()})
    quiet = interleaved(quiet_runs, repeat, 1, progress)
    with one_core_busy():
        busy = interleaved(
            {(k, BUSY_PHASE): _under(policy, f) for k, f in ours.items()}, repeat, 1, progress
        )
    floor_flops = gemm_flops(params.sizes, x.shape[0], "fwd+bwd weights")
    return [
        *_training_timings(quiet, params.sizes, x.shape[0], floor_flops),
        *_training_timings(busy, params.sizes, x.shape[0], floor_flops),
    ]


def _strategy_epoch(
    s: str, net: Net, params: Params, x: np.ndarray, y: np.ndarray, config: BenchConfig
) -> Callable[[], object]:
    """One SGD epoch of strategy `s` from `params` (copied: every run starts alike)."""
    from fcgrad.training.train import EpochRunner, TrainConfig

    cfg = TrainConfig(
        strategy=s,
        loss=config.loss,
        hidden=config.hidden,
        batch_size=config.batch_size,
        activation=config.activation,
    )

    def epoch() -> object:
        rng = np.random.default_rng(config.seed)
        p = params.copy()
        sgd = optimizers.make(cfg.optimizer, p, cfg.hyper)
        return EpochRunner(cfg, strategies.get(s), net, p, sgd, x, y, rng).epoch(1)

    return epoch


def _under(policy: ThreadPolicy, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with policy.batch_steps():
            return fn()

    return run


def _training_timings(
    times: dict[tuple[str, str], list[float]],
    sizes: Sequence[int],
    rows: int,
    floor_flops: int | None,
) -> list[Timing]:
    """Timings of one training phase, each against the fastest and (when the phase has
    one) against its GEMM floor; FLOPs of the weights' gradients of a net of layer
    `sizes` on `rows` rows (the floor's: its products alone)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    fastest = min(med.values())
    floor = next((m for (impl, _), m in med.items() if impl == REFERENCE), None)
    flops = count_flops(sizes, rows, backward=True, input_grad=False)
    return [
        Timing(
            impl,
            phase,
            tuple(v),
            floor_flops if impl == REFERENCE and floor_flops is not None else flops,
            med[(impl, phase)] / fastest,
            med[(impl, phase)] / floor if floor is not None else None,
        )
        for (impl, phase), v in times.items()
    ]
