"""Gradient checks of the lesson's net: strategies against each other and finite differences.

Two kinds of reference, as in the lesson and in JAX's `check_grads`:

1. *Cross-strategy*: each checked strategy's float32 gradients on the chosen rows
   (all 60,000 by default) against the other strategies', shapes first (the
   lesson's `testSame`), then values: |a - r| <= atol + rtol * |r|, with
   atol = 1e-5 * max|r| (round-off in float32 sums scales with the gradient)
   and rtol = 1e-4.
2. *Central differences* in float64 on a row subset: for K sampled coordinates of
   every parameter and of the input, n = (L(t + h) - L(t - h)) / (2 h) with
   h = 1e-6 * max(1, |t|), against the strategy's own float64 gradient:
   |a - n| <= 1e-5 * max|n| + 1e-5 * |n| + noise, where max is over the sampled
   coordinates and noise = 32 eps (|L(t+h)| + |L(t-h)|) / (2 h) bounds the
   float64 rounding of L amplified by 1 / 2h. The input's coordinates are
   differenced on their own row (the loss is a mean over rows), which keeps that
   noise small.

NaN or inf in either side fails the check. Relative errors are symmetric and
floored: |a - r| / max(|a|, |r|, 1e-12).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad import strategies
from fcgrad.checking.kinks import find_kinks, kink_shift, transverse
from fcgrad.checking.verdict import SCANS, ArrayLine, Differences, differences, judge
from fcgrad.engine.threads import ThreadPolicy
from fcgrad.errors import ConfigError
from fcgrad.nn import losses
from fcgrad.nn.activations import Activation
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import Loss
from fcgrad.nn.memory import check_fits, pass_bytes
from fcgrad.nn.net import Net, NetConfig, forward
from fcgrad.nn.params import Params
from fcgrad.progress import NoSteps, Steps
from fcgrad.strategies import LossAndGrads

CROSS_RTOL, CROSS_ATOL_SCALE = 1e-4, 1e-5
FD_RTOL, FD_ATOL_SCALE, FD_STEP = 1e-5, 1e-5, 1e-6
REL_FLOOR = 1e-12
CHUNK = 1 << 18  # elements per comparison chunk (2 MB of float64)
FD_REFERENCE = "central diff"
TESTSAME = "testSame"  # the lesson's shape check


@dataclasses.dataclass(frozen=True)
class CheckRow:
    """One comparison: a strategy's gradient of one array against one reference.

    `checked` counts the compared elements; `worst_index` is the element with the
    largest error relative to its tolerance, with `value` (the strategy's) and
    `ref_value` there. Errors are NaN when the shapes differ.
    """

    strategy: str
    parameter: str
    shape: tuple[int, ...]
    reference: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    value: float
    ref_value: float
    passed: bool
    note: str = ""
    kinks: int = 0  # coordinates where the loss is not differentiable (not failures)

    @classmethod
    def failed(
        cls, strategy: str, parameter: str, shape: tuple[int, ...], reference: str, note: str
    ) -> CheckRow:
        """A failing row with no values compared (a shape or dtype mismatch)."""
        nan = float("nan")
        return cls(strategy, parameter, shape, reference, 0, nan, nan, (), nan, nan, False, note)


@dataclasses.dataclass(frozen=True)
class GradCheckConfig(NetConfig):
    """What to check: strategies, loss, hidden sizes, rows (None = all), samples, fd rows, seed,
    and the activation between the dense layers."""

    strategies: tuple[str, ...] = strategies.NAMES
    loss: Loss = Loss.mse
    hidden: tuple[int, ...] = (50,)
    rows: int | None = None
    samples: int = 20
    fd_rows: int = 1000
    seed: int = 0
    activation: Activation = Activation.relu

    def validate(self) -> None:
        """Raise ConfigError naming (as `param`) the first unusable option."""
        for s in self.strategies:
            strategies.get(s)
        self.check_at_least(rows=1, samples=1, fd_rows=1)


@dataclasses.dataclass
class GradCheckResult:
    """Every `CheckRow`, the tolerance rules used, and the loss per strategy."""

    config: GradCheckConfig
    rows: list[CheckRow]
    rules: dict[str, str]
    losses: dict[str, float]
    n_rows: int
    n_fd_rows: int

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.rows)

    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.passed]

    def to_dict(self) -> dict[str, object]:
        cfg = losses.config_dict(self.config)
        return {
            "config": cfg,
            "rows_used": self.n_rows,
            "fd_rows_used": self.n_fd_rows,
            "rules": self.rules,
            "losses": self.losses,
            "ok": self.ok,
            "checks": [dataclasses.asdict(r) for r in self.rows],
        }


RULES = {
    "cross-strategy (float32)": f"|a - r| <= {CROSS_ATOL_SCALE:g}*max|r| + {CROSS_RTOL:g}*|r|",
    f"{FD_REFERENCE} (float64)": f"|a - n| <= {FD_ATOL_SCALE:g}*max|n| + {FD_RTOL:g}*|n| + "
    f"32 eps (|L+| + |L-|)/2h, h = {FD_STEP:g}*max(1, |t|)",
}


def compare(
    strategy: str,
    name: str,
    a: np.ndarray,
    r: np.ndarray,
    reference: str,
    atol: float | np.ndarray,
    rtol: float,
) -> CheckRow:
    """Compare `a` with the reference `r` elementwise: |a - r| <= atol + rtol * |r|.

    `atol` is a scalar or an array of `r`'s shape (one tolerance per element).

    Works through the arrays in chunks of `CHUNK` elements in float64, so that
    checking a (60000, 784) gradient needs a few MB of temporaries, not GB.
    """
    if a.shape != r.shape:
        return CheckRow.failed(
            strategy, name, a.shape, reference, f"shape {a.shape} != reference shape {r.shape}"
        )
    fa, fr = a.reshape(-1), r.reshape(-1)
    fatol = np.reshape(atol, -1) if np.ndim(atol) else None
    acc = _Errors()
    for start in range(0, fa.size, CHUNK):
        chunk = slice(start, start + CHUNK)
        tol = float(atol) if fatol is None else fatol[chunk]
        acc.add(start, fa[chunk], fr[chunk], tol, rtol)
    worst = tuple(int(i) for i in np.unravel_index(acc.worst, a.shape)) if a.size else ()
    nan = float("nan")
    return CheckRow(
        strategy,
        name,
        a.shape,
        reference,
        int(a.size),
        nan if acc.non_finite else acc.max_abs,
        nan if acc.non_finite else acc.max_rel,
        worst,
        float(fa[acc.worst]) if a.size else 0.0,
        float(fr[acc.worst]) if a.size else 0.0,
        acc.passed,
        "non-finite values" if acc.non_finite else "",
    )


class _Errors:
    """Running maxima of a chunked comparison, and the flat index of the worst element."""

    def __init__(self) -> None:
        self.max_abs = self.max_rel = 0.0
        self.worst, self.worst_score = 0, -1.0
        self.passed, self.non_finite = True, False

    def add(
        self, start: int, a: np.ndarray, r: np.ndarray, atol: float | np.ndarray, rtol: float
    ) -> None:
        a64, r64 = a.astype(np.float64), r.astype(np.float64)
        err = np.abs(a64 - r64)
        tol = atol + rtol * np.abs(r64)
        bad = ~np.isfinite(err)
        score = np.where(bad, np.inf, err / np.maximum(tol, np.finfo(np.float64).tiny))
        i = int(np.argmax(score))
        if score[i] > self.worst_score:
            self.worst, self.worst_score = start + i, float(score[i])
        with np.errstate(invalid="ignore"):  # inf / inf where a value is infinite: counted as bad
            rel = err / np.maximum(np.maximum(np.abs(a64), np.abs(r64)), REL_FLOOR)
        self.max_abs = max(self.max_abs, float(err.max()))
        self.max_rel = max(self.max_rel, float(rel.max()))
        self.non_finite = self.non_finite or bool(bad.any())
        self.passed = self.passed and not bad.any() and bool(np.all(err <= tol))


def rows_to_use(rows: int | None, available: int) -> int:
    """`rows`, or all `available` when None; ConfigError when more are asked than there are."""
    if rows is not None and rows > available:
        raise ConfigError(f"rows {rows} is more than the {available:,} training rows", param="rows")
    return available if rows is None else rows


def _max_abs(a: np.ndarray) -> float:
    """max |a| over the finite elements (0 for an empty or all non-finite array)."""
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size else 0.0


def _cross_pairs(checked: Sequence[str]) -> list[tuple[str, str]]:
    """(strategy, reference) pairs: each checked strategy against every other, each pair once."""
    pairs = []
    for s in checked:
        for r in strategies.NAMES:
            if r != s and not (r in checked and (r, s) in pairs):
                pairs.append((s, r))
    return pairs


def gradcheck(
    x: np.ndarray,
    labels: np.ndarray,
    config: GradCheckConfig,
    progress: Steps | None = None,
    threads: ThreadPolicy | None = None,
) -> GradCheckResult:
    """Check the chosen strategies' gradients of the configured net on normalized data.

    x (N, 784) float32 normalized; labels (N,) int64. Parameters come from the
    activation's init (`fcgrad.nn.init`) with `config.seed`. `progress` hears of each
    strategy's gradients and each array's central differences. `threads` is the BLAS
    thread policy (default: every core for the full-batch gradients, one for central
    differences on a few rows). Raises ConfigError for unusable options.
    """
    progress = progress or NoSteps()
    threads = threads or ThreadPolicy.default()
    config.validate()
    n = rows_to_use(config.rows, x.shape[0])
    x, labels = x[:n], labels[:n]
    net = config.net(x.shape[1])
    check_fits(
        2 * pass_bytes(net, n) + x.nbytes,  # two strategies' gradients, the input's included
        f"checking a {net.describe()} net on {n:,} rows",
    )
    params = init_params(net, config.seed)
    y = losses.targets(config.loss, labels, x.dtype)
    needed = set(config.strategies) | {r for _, r in _cross_pairs(config.strategies)}
    n_arrays = 2 * len(net.dense) + 1
    progress.start(len(needed) + len(config.strategies) * (1 + n_arrays))
    grads = {}
    for s in (s for s in strategies.NAMES if s in needed):
        progress.step(f"gradients of {s} on {n:,} rows")
        with threads.on_rows(n):
            grads[s] = strategies.get(s).value_and_grads(net, params, x, y, input_grad=True)
    rows = [check_test_same(s, grads[s], params, x) for s in config.strategies]
    for s, r in _cross_pairs(config.strategies):
        for name, a in grads[s].named().items():
            rows.append(cross_compare(s, name, a, grads[r].named()[name], r))
    m = min(config.fd_rows, n)
    with threads.on_rows(m):
        rows += _fd_rows(net, params, x[:m], labels[:m], config, progress)
    return GradCheckResult(config, rows, RULES, {s: g.loss for s, g in grads.items()}, n, m)


def cross_compare(
    strategy: str, name: str, a: np.ndarray, ref: np.ndarray, reference: str
) -> CheckRow:
    """`strategy`'s gradient `a` of array `name` against `reference`'s, float32 rule:
    |a - r| <= CROSS_ATOL_SCALE * max|r| + CROSS_RTOL * |r|."""
    return compare(strategy, name, a, ref, reference, CROSS_ATOL_SCALE * _max_abs(ref), CROSS_RTOL)


def check_test_same(s: str, g: LossAndGrads, params: Params, x: np.ndarray) -> CheckRow:
    """The lesson's testSame: every gradient has its input's shape and dtype.

    One row per strategy (`checked` counts the arrays); when it fails, `parameter`
    names the first array that differs and `note` says how.
    """
    expected = {**params.named(), "x": x}
    nan = float("nan")
    for name, arr in expected.items():
        got = g.named().get(name)
        if got is None or got.shape != arr.shape or got.dtype != arr.dtype:
            desc = "missing" if got is None else f"{got.shape} {got.dtype}"
            note = f"gradient is {desc}, input is {arr.shape} {arr.dtype}"
            return CheckRow.failed(s, name, arr.shape, TESTSAME, note)
    note = f"{len(expected)} of {len(expected)} match"
    return CheckRow(s, "all", (), TESTSAME, len(expected), 0.0, 0.0, (), nan, nan, True, note)


def _fd_rows(
    net: Net,
    params: Params,
    x: np.ndarray,
    labels: np.ndarray,
    config: GradCheckConfig,
    progress: Steps,
) -> list[CheckRow]:
    """Each checked strategy's float64 gradients against float64 central differences.

    Every coordinate is judged by `fcgrad.checking.verdict.judge`, the rule check_grads
    uses: a kink crossed by the step is retried with smaller steps, and at a kink at the
    point itself (a ReLU input at exactly 0) the value must lie in the range the kinks
    allow; it is then counted in the row's `kinks`, else it fails. Besides the sampled
    coordinates, each strategy's own gradient finds the coordinates at a kink
    (`fcgrad.checking.kinks`), and all of those are judged too.
    """
    p64, x64 = params.astype(np.float64), x.astype(np.float64)
    y64 = losses.targets(config.loss, labels, np.float64)
    arrays = {**p64.named(), "x": x64}
    rng = np.random.default_rng(config.seed)
    sampled = {name: _sample(a, config.samples, rng) for name, a in arrays.items()}
    aside = np.random.default_rng([config.seed, 1])
    across = [transverse(list(arrays.values()), aside) for _ in range(2)]
    problem = _FdProblem(net, p64, x64, y64, across)
    rows = []
    for s in config.strategies:
        strategy = strategies.get(s)
        progress.step(f"{s}: float64 gradients and kinks")
        analytic = strategy.value_and_grads(net, p64, x64, y64, input_grad=True)
        got = analytic.named()
        if any(got[name].shape != a.shape for name, a in arrays.items()):
            rows += [  # reported as a shape mismatch, not indexed
                compare(s, name, got[name], a, FD_REFERENCE, 0.0, FD_RTOL)
                for name, a in arrays.items()
            ]
            continue
        near, _ = find_kinks(
            list(arrays.values()), list(got.values()), problem.gradient_at(strategy), aside, FD_RTOL
        )
        shift = kink_shift(list(arrays.values()), near)
        if shift is not None and not problem.cache:  # as check_grads: scan along it second
            problem.across[1] = shift
        for (name, a), found in zip(arrays.items(), near):
            progress.step(f"{s}: central differences of {name}")
            jumps = set(_indices(a, found))
            cs = [problem.coordinate(name, ix) for ix in sorted({*sampled[name], *jumps})]
            atol = problem.atol(name, sampled)
            rows.append(_judged_row(s, name, a.shape, got[name], cs, atol, jumps))
    return rows


def _sample(a: np.ndarray, k: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    return _indices(a, np.sort(rng.choice(a.size, size=min(k, a.size), replace=False)))


def _indices(a: np.ndarray, flat: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(j) for j in np.unravel_index(int(i), a.shape)) for i in flat]


@dataclasses.dataclass(frozen=True)
class _Coordinate:
    """One judged coordinate: the loss along it (a `Line`), its step, and the differences
    at that step (they set the array's atol scale, and judge() reuses them)."""

    index: tuple[int, ...]
    line: ArrayLine
    h: float
    first: Differences


class _FdProblem:
    """The net's loss in float64 as a function of each coordinate of the parameters and
    of the input, with the lines `judge` moves along (kept, one per coordinate)."""

    def __init__(
        self, net: Net, p: Params, x: np.ndarray, y: np.ndarray, across: list[list[np.ndarray]]
    ) -> None:
        self.net, self.p, self.x, self.y, self.across = net, p, x, y, across
        self.names = [*p.named(), "x"]
        self.cache: dict[tuple[str, tuple[int, ...]], _Coordinate] = {}

    def coordinate(self, name: str, index: tuple[int, ...]) -> _Coordinate:
        """The loss as a function of one coordinate of a parameter or of the input.

        Both losses are means over rows, so d L / d x[r, i] = (1/M) d l_r / d x[r, i]:
        the input's coordinates use row r alone, which keeps their rounding error M
        times smaller than differencing the whole mean would.
        """
        key = (name, index)
        if key not in self.cache:
            self.cache[key] = self._coordinate(name, index)
        return self.cache[key]

    def _coordinate(self, name: str, index: tuple[int, ...]) -> _Coordinate:
        net, p, arrays = self.net, self.p, list(self.p.arrays())
        if name != "x":
            x, y = self.x, self.y

            def f() -> float:
                return losses.value(net.loss, forward(net, p, x), y)

            k, ix, leaves, across = self.names.index(name), index, [*arrays, x], self.across
        else:
            r, m = index[0], int(self.x.shape[0])
            row, target = self.x[r : r + 1].copy(), self.y[r : r + 1]

            def f() -> float:
                return float(losses.value(net.loss, forward(net, p, row), target)) / m

            k, ix, leaves = len(arrays), (0, *index[1:]), [*arrays, row]
            across = [[*a[:-1], a[-1][r : r + 1]] for a in self.across]
        line = ArrayLine(f, f(), leaves, (k, ix), across)
        h = FD_STEP * max(1.0, abs(float(leaves[k][ix])))
        return _Coordinate(index, line, h, differences(line, h))

    def atol(self, name: str, sampled: dict[str, list[tuple[int, ...]]]) -> float:
        """The array's atol: FD_ATOL_SCALE times max |n| over its sampled coordinates."""
        cs = [self.coordinate(name, ix) for ix in sampled[name]]
        return FD_ATOL_SCALE * _max_abs(np.array([c.first.central for c in cs]))

    def gradient_at(self, strategy: Any) -> Callable[[list[np.ndarray]], list[np.ndarray] | None]:
        """The strategy's float64 gradients at other parameters and inputs (finding kinks)."""

        def at(leaves: list[np.ndarray]) -> list[np.ndarray] | None:
            p = Params.from_arrays(leaves[:-1])
            g = strategy.value_and_grads(self.net, p, leaves[-1], self.y, input_grad=True)
            return list(g.named().values())

        return at


def _judged_row(
    s: str,
    name: str,
    shape: tuple[int, ...],
    got: np.ndarray,
    cs: list[_Coordinate],
    atol: float,
    jumps: set[tuple[int, ...]],
) -> CheckRow:
    """Judge each coordinate; passing kinks are counted apart, the rest compared with their
    tolerances (a value outside the range its kinks allow fails, shown against the
    nearest end of that range). `jumps`: the coordinates where the gradient jumps."""
    a, n, tol, kinks = [], [], [], 0
    keep: list[tuple[int, ...]] = []
    failed = False
    for c in cs:
        value = float(got[c.index])
        scans = 1 if failed else SCANS  # once one failed, one scan a kink (exact where apart)
        kinked = c.index in jumps
        v = judge(c.line, value, c.h, FD_RTOL, atol, first=c.first, scans=scans, kinked=kinked)
        failed = failed or not v.ok
        if v.kind == "kink":
            kinks += 1
            continue
        reference = v.differences.central
        if v.kind == "kink-outside":  # the nearest value that would pass
            reference = min(max(value, v.low), v.high)
        a.append(value)
        n.append(reference)
        tol.append(v.tol)
        keep.append(c.index)
    row = compare(s, name, np.array(a), np.array(n), FD_REFERENCE, np.array(tol), 0.0)
    worst = keep[row.worst_index[0]] if row.worst_index else ()
    return dataclasses.replace(row, shape=shape, worst_index=worst, checked=len(cs), kinks=kinks)


__all__ = [
    "CheckRow",
    "GradCheckConfig",
    "GradCheckResult",
    "check_test_same",
    "compare",
    "cross_compare",
    "gradcheck",
]
