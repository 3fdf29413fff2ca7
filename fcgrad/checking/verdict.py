"""The verdict on one analytic derivative against float64 central differences.

Both checkers use this one rule (README, "How a verdict is reached"). A derivative
is judged along a line through the point x: a coordinate axis e_i (the derivative
a = g_i) or a direction u over all arguments (a = g . u). With n the central
difference at step h and noise = 32 eps (|f(x+h)| + |f(x-h)|) / 2h, the float64
rounding of f that the division by 2h amplifies:

1. *Smooth*: pass when |a - n| <= atol + rtol |n| + noise. A failure is retried at
   steps h/10 and h/100 under the same tolerance (a kink merely near x).
2. *A kink at x*: the left and right differences L and R disagree by more than that
   tolerance, and still do at h/100 (for a smooth f their gap, about h |f''|,
   shrinks with h). Then a passes when it lies in [L + N, L + P], to the
   tolerance of the one-sided differences, where P and N are the sums of the
   positive and of the negative jumps of the derivative along a parallel line
   through a nearby point x + tau v (tau = h/4), on which the kinks that meet at x
   lie apart. Each kink may then contribute any share of its own jump: what the
   chain rule gives with any subgradient per op (relu'(0) = 0, 1 or between; a tie
   split any way that sums to one), composed, where the kinks lie apart. For one
   kink, or kinks that all bend the same way, the range is just [min(L, R), max(L,
   R)], and it is only measured when a lies outside that. Up to `SCANS` scans are
   joined (v a random direction, then all kink coordinates shifted together, each
   on both sides): behind other kinks each scan sees a part of the range.
3. A line along which f looks smooth at a point where the gradient jumps (`kinked`)
   gets the range of 2 too, before a failure stands.

A value outside the range is 'kink-outside', a failure; NaN never passes.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

EPS = float(np.finfo(np.float64).eps)
ROUNDOFF = 32 * EPS
SCAN_CELLS = 8  # the first grid of a kink scan over [-h, h]
SCAN_EVALS = 400  # f evaluations one scan may take at most
SCAN_DEPTH = 14  # the narrowest scan cell is 2h / 2**SCAN_DEPTH
SCANS = 4  # scans across the kinks at most: two directions aside, each on both sides


class Line(Protocol):
    """f along a line through the point: `at(s)` puts the input at x + s e (exactly x
    at s = 0), `aside(t, j)` moves the line's base to x + t v_j, across it (False when
    the line has no v_j), and `f()` evaluates f wherever they last put the input."""

    f0: float

    def f(self) -> float: ...

    def at(self, s: float) -> None: ...

    def aside(self, t: float, j: int = 0) -> bool: ...


class ArrayLine:
    """A `Line` through a point held in float64 arrays that f reads, moved in place.

    `along` is a coordinate `(k, index)` of `leaves[k]` or a direction (one array per
    leaf); `across` lists the directions (one array per leaf each) `aside` moves along.
    """

    def __init__(
        self,
        f: Callable[[], float],
        f0: float,
        leaves: Sequence[np.ndarray],
        along: tuple[int, tuple[int, ...]] | Sequence[np.ndarray],
        across: Sequence[Sequence[np.ndarray]] = (),
    ) -> None:
        self.f, self.f0, self.leaves = f, f0, leaves
        self.along, self.across = along, across
        self.s = self.t = 0.0
        self.side = 0
        self.origin: list[np.ndarray] | None = None
        self.ranges: dict[float, list[tuple[float, float]]] = {}  # scans by step (f's, not a's)
        if isinstance(along, tuple):
            k, ix = along
            self.t0 = float(leaves[k][ix])
        else:
            self.origin = [x.copy() for x in leaves]

    def at(self, s: float) -> None:
        self.s = s
        if isinstance(self.along, tuple):
            k, ix = self.along
            self.leaves[k][ix] = self.t0 + s if s else self.t0
            return
        self._place()

    def aside(self, t: float, j: int = 0) -> bool:
        if j >= len(self.across):
            return False
        if self.origin is None:
            self.origin = [x.copy() for x in self.leaves]
        self.t, self.side = t, j
        self._place()
        if isinstance(self.along, tuple):
            self.at(self.s)
        return True

    def _place(self) -> None:
        assert self.origin is not None
        along = None if isinstance(self.along, tuple) else self.along
        for j, (x, x0) in enumerate(zip(self.leaves, self.origin)):
            if along is not None and self.s:
                np.multiply(along[j], self.s, out=x)
                x += x0
            else:
                np.copyto(x, x0)  # exactly the point at s = t = 0
            if self.t:
                x += self.t * self.across[self.side][j]


@dataclasses.dataclass(frozen=True)
class Differences:
    """Finite differences at one step: central, left and right, and the central one's noise."""

    central: float
    left: float
    right: float
    noise: float


@dataclasses.dataclass(frozen=True)
class Verdict:
    """'pass', 'fail', 'kink' (a passing value at a kink) or 'kink-outside' (a failing one),
    the differences it rests on, the tolerance, and at a kink the range that passes."""

    kind: str
    differences: Differences
    tol: float
    low: float = float("nan")
    high: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.kind in ("pass", "kink")

    @property
    def at_kink(self) -> bool:
        return self.kind.startswith("kink")


def differences(line: Line, h: float) -> Differences:
    """Central, left and right differences of f along `line` at step h."""
    with np.errstate(all="ignore"):  # a step out of f's domain is handled, not warned about
        line.at(h)
        up = line.f()
        line.at(-h)
        down = line.f()
        line.at(0.0)
    f0 = line.f0
    noise = ROUNDOFF * (abs(up) + abs(down)) / (2 * h)
    return Differences((up - down) / (2 * h), (f0 - down) / h, (up - f0) / h, noise)


def within(a: float, n: float, tol: float) -> bool:
    """|a - n| <= tol; False for NaN, which never passes."""
    return bool(abs(a - n) <= tol)


def judge(
    line: Line,
    a: float,
    h: float,
    rtol: float,
    atol: float,
    relative: float = 0.0,
    first: Differences | None = None,
    scans: int = SCANS,
    kinked: bool = False,
) -> Verdict:
    """The verdict on the analytic derivative `a` along `line` (the module docstring's rule).

    `h` is the first step; the tolerance is atol + rtol |n| + noise. A step that leaves
    f's domain (a non-finite value, e.g. log below 0) is replaced by `relative` (the
    step scaled to the coordinate's own size) or shrunk tenfold. `first`: the
    differences at step h when the caller has them already (not redone). `scans`: how
    many scans across the kinks `kink_range` may take at most. `kinked`: f has a kink at
    the point (the gradient jumps there) though it may be smooth along this line: a value
    that the line's difference fails is then judged against the range the kinks allow (f
    flat along an axis, yet steeper along it on the far side of another kink).
    """
    h, d = _finite_step(line, h, relative, first)
    tol = atol + rtol * abs(d.central) + d.noise
    spread = abs(d.right - d.left)
    if spread > tol + 2 * ROUNDOFF * abs(line.f0) / h:
        small = differences(line, h / 100)
        if abs(small.right - small.left) > spread / 2:
            return _at_kink(line, a, h, (d, small), rtol, atol, scans)
    if within(a, d.central, tol):
        return Verdict("pass", d, tol)
    for scale in (0.1, 0.01):
        smaller = differences(line, h * scale)
        if within(a, smaller.central, atol + rtol * abs(smaller.central) + d.noise):
            return Verdict("pass", smaller, tol)
    if kinked:
        verdict = _at_kink(line, a, h, (d, differences(line, h / 100)), rtol, atol, scans)
        if verdict.ok:
            return verdict
    return Verdict("fail", d, tol)


def _at_kink(
    line: Line,
    a: float,
    h: float,
    steps: tuple[Differences, Differences],
    rtol: float,
    atol: float,
    scans: int,
) -> Verdict:
    """Judge `a` at a kink: inside [min(L, R), max(L, R)] at once, else against the range
    that a scan across the kinks measures (`kink_range`). `steps`: the differences at h
    and at h/100."""
    d, small = steps
    # the one-sided differences at h or at h/100, whichever errs less: rounding (4 noise,
    # a hundredfold at h/100) plus truncation, estimated from how far they moved between
    # the two steps (all of it at h, a hundredth at h/100). Where f is large (an offset of
    # 1e6) rounding rules and h is the better step; elsewhere h/100 is
    bend = max(abs(d.left - small.left), abs(d.right - small.right))
    sides, error = min((small, 4 * small.noise + bend / 99), (d, 4 * d.noise + bend), key=_second)
    lo, hi = sorted((sides.left, sides.right))
    tol = atol + rtol * max(abs(lo), abs(hi)) + error
    if lo - tol <= a <= hi + tol:
        return Verdict("kink", sides, tol, lo, hi)
    lo, hi = kink_range(line, h, sides, a, (tol, tol + 2 * bend), scans)
    return Verdict("kink" if lo - tol <= a <= hi + tol else "kink-outside", sides, tol, lo, hi)


def _second(pair: tuple[Differences, float]) -> float:
    return pair[1]


def kink_range(
    line: Line,
    h: float,
    sides: Differences,
    a: float,
    tols: tuple[float, float],
    scans: int = SCANS,
) -> tuple[float, float]:
    """[L + N, L + P]: the derivatives the kinks at the point allow along `line`, as far
    as scans across them have to go to take in `a` (`scans` at most).

    For one scan the line's base moves aside, by tau = h/4 along one direction across
    it (h/64 when the scan's ends do not yet match L and R: a kink lay outside [-h, h]);
    there the kinks lie apart, and a scan of f over [-h, h] (`_slopes`) gives the
    derivative piece by piece. The path of derivatives runs from L through the scanned
    pieces to R; P and N sum its rises and its falls (each above the noise of its two
    ends). Kinks apart from each
    other give every scan the same range; kinks behind
    kinks (a row of zeros through two ReLU layers) give each scan a part of it, so the
    ranges of further scans, on the other side and along another direction, are joined
    while `a` lies outside. Scans are kept on the line, which may be judged again.
    `tols`: the tolerance of `a`, and that of a scan's ends
    against L and R (which adds how far the derivative moves over h, its curvature).
    """
    tol, ends = tols
    cache = getattr(line, "ranges", None)
    done = cache.setdefault(h, []) if cache is not None else []
    best = (min(sides.left, sides.right), max(sides.left, sides.right))
    for scan in range(scans):
        if scan == len(done):
            sign = 1.0 if scan % 2 == 0 else -1.0
            measured = _measure_range(line, h, sides, (a, tol, ends), scan // 2, sign)
            if measured is None:
                break
            done.append(measured)
        best = (min(best[0], done[scan][0]), max(best[1], done[scan][1]))
        if best[0] - tol <= a <= best[1] + tol:
            break
    return best


def _measure_range(
    line: Line,
    h: float,
    sides: Differences,
    judged: tuple[float, float, float],
    j: int,
    sign: float,
) -> tuple[float, float] | None:
    """One scan's range, with the base aside along direction j (None: no such direction,
    or f not finite there). `judged`: the value, its tolerance (the scan at h/64 is not
    needed once the value lies inside) and the tolerance of the scan's ends."""
    a, tol_a, tol = judged
    left, right = sides.left, sides.right
    best = None
    for tau in (h / 4, h / 64):
        try:
            if not line.aside(sign * tau, j):
                return best
            slopes = _slopes(line, h)
        finally:
            line.at(0.0)
            line.aside(0.0, j)
        if not slopes:
            return best
        path = [(left, 2 * sides.noise), *slopes, (right, 2 * sides.noise)]
        rise = fall = 0.0
        for (s0, n0), (s1, n1) in itertools.pairwise(path):
            if abs(s1 - s0) > n0 + n1:
                rise, fall = rise + max(s1 - s0, 0.0), fall + min(s1 - s0, 0.0)
        lo, hi = left + fall, left + rise
        best = (lo, hi) if best is None else (min(best[0], lo), max(best[1], hi))
        inside = best[0] - tol_a <= a <= best[1] + tol_a
        if inside or (abs(slopes[0][0] - left) <= tol and abs(slopes[-1][0] - right) <= tol):
            break
    return best


def _slopes(line: Line, h: float) -> list[tuple[float, float]]:
    """f's slope, and its rounding, cell by cell over s in [-h, h] along `line`.

    A grid of `SCAN_CELLS` cells; a cell where f bends at the midpoint (a kink inside)
    is cut in quarters. Where the quarters' slopes only rise, or only fall, the kinks in
    it bend one way and their jumps add up as they are: the quarters are kept. Where they
    do both, a rise and a fall might cancel inside a quarter, so each is cut again, down
    to 2h / 2**SCAN_DEPTH, within `SCAN_EVALS` evaluations. [] if f is not finite.
    """
    grid = np.linspace(-h, h, SCAN_CELLS + 1)
    values = [_value_at(line, float(s)) for s in grid]
    cells = [(float(a), float(b), fa, fb, False) for a, b, fa, fb in _pairs(grid, values)]
    evals, narrowest = len(grid), 2 * h / 2**SCAN_DEPTH
    split = True
    while split and evals < SCAN_EVALS:
        split, out = False, []
        for a, b, fa, fb, done in cells:
            if done or b - a <= narrowest or evals >= SCAN_EVALS:
                out.append((a, b, fa, fb, True))
                continue
            m = (a + b) / 2
            fm = _value_at(line, m)
            evals += 1
            size = max(abs(fa), abs(fb), abs(fm))
            if abs(fm - (fa + fb) / 2) <= 4 * ROUNDOFF * size:  # straight
                out.append((a, b, fa, fb, True))
                continue
            q1, q3 = (a + m) / 2, (m + b) / 2
            fs = [fa, _value_at(line, q1), fm, _value_at(line, q3), fb]
            evals += 2
            xs = [a, q1, m, q3, b]
            quarters = [(xs[i], xs[i + 1], fs[i], fs[i + 1]) for i in range(4)]
            rises = [(f1 - f0) / (x1 - x0) for x0, x1, f0, f1 in quarters]
            noise = 4 * ROUNDOFF * max(size, *map(abs, fs)) / (q1 - a)
            changes = [s1 - s0 for s0, s1 in itertools.pairwise(rises) if abs(s1 - s0) > noise]
            one_way = all(c > 0 for c in changes) or all(c < 0 for c in changes)
            out += [(*q, one_way) for q in quarters]
            split = split or not one_way
        cells = out
    slopes = [
        ((fb - fa) / (b - a), ROUNDOFF * (abs(fa) + abs(fb)) / (b - a)) for a, b, fa, fb, _ in cells
    ]
    return slopes if all(np.isfinite(s) for s, _ in slopes) else []


def _pairs(grid: np.ndarray, values: list[float]) -> list[tuple[float, float, float, float]]:
    return [(grid[j], grid[j + 1], values[j], values[j + 1]) for j in range(len(values) - 1)]


def _value_at(line: Line, s: float) -> float:
    with np.errstate(all="ignore"):
        line.at(s)
        return line.f()


def _finite_step(
    line: Line, h: float, relative: float, first: Differences | None = None
) -> tuple[float, Differences]:
    """A step whose differences are finite (f stays in its domain): h; else the step
    relative to the coordinate's own size (`relative`, e.g. 6e-12 at t = 1e-6, where
    log's domain ends 1e-6 away); else tenfold smaller, four times at most."""
    d = first if first is not None else differences(line, h)
    if np.isfinite(d.central) or not np.isfinite(line.f0):
        return h, d
    h = relative if 0 < relative < h else h / 10
    d = differences(line, h)
    for _ in range(4):
        if np.isfinite(d.central):
            break
        h /= 10
        d = differences(line, h)
    return h, d
