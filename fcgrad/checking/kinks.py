"""Finding the coordinates at a kink, so that every one of them is judged.

Kinks are where hand-written rules go wrong (relu'(0), a tie in a max), and sampling
a few coordinates of a large argument easily skips the one that is wrong there. The
analytic gradient finds them all at once: on either side of a kink it differs by
the kink's jump, while a smooth gradient moves by only 2 eps |H v|. So the gradient
is computed at x + eps v and x - eps v for two random directions v (eps = 1e-9 of
each leaf's scale), and every coordinate where the two differ by more than the
tolerance, and still by half as much at a step four times shorter (a kink's jump
stays, a smooth change shrinks with the step: at a zero gradient the tolerance is zero),
is judged, beside the sampled ones (`MAX_KINKS` per leaf at most, the
largest jumps first: a rule wrong at a kink is wrong at every kink of its kind). The
gradient is evaluated there, one billionth away, where a rule that is wrong only
exactly at the kink is right: what is found does not depend on the value judged.

The same coordinates give the tie directions (`tie_values`, `tie_candidates`: the
inputs holding a tied value, shifted together) and `kink_shift` (all of them moved up
together), a direction the verdict's scans move along.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

JITTER = 1e-9  # how far, relative to each leaf's scale, the gradient is taken on either side
TRIES = 2  # random directions: a sum of jumps that cancels along one rarely does along two
MAX_TIE_DIRECTIONS = 8  # directions that shift tied inputs together, largest groups first
MAX_KINKS = 2048  # kink coordinates judged per leaf: each costs a few evaluations of f

GradientAt = Callable[[list[np.ndarray]], list[np.ndarray] | None]


def scale(x: np.ndarray) -> float:
    """max(1, RMS of x): the size of a step relative to an argument leaf."""
    return max(1.0, float(np.sqrt(np.mean(x * x)))) if x.size else 1.0


def transverse(leaves: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A random direction over all leaves: standard normal per coordinate, each leaf's part
    times `scale(leaf)`."""
    return [rng.standard_normal(x.shape) * scale(x) for x in leaves]


def unit(vs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`vs` scaled to unit norm over all leaves (unchanged if zero)."""
    norm = float(np.sqrt(sum(float(np.sum(v * v)) for v in vs))) or 1.0
    return [v / norm for v in vs]


def orthogonal(vs: Sequence[np.ndarray], us: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`vs` less its component along `us`, as a unit vector over all leaves."""
    uu = sum(float(np.sum(u * u)) for u in us) or 1.0
    c = sum(float(np.sum(v * u)) for v, u in zip(vs, us)) / uu
    return unit([v - c * u for v, u in zip(vs, us)])


def find_kinks(
    leaves: Sequence[np.ndarray],
    analytic: Sequence[np.ndarray],
    gradient_at: GradientAt,
    rng: np.random.Generator,
    rtol: float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per leaf, the flat indices where the analytic gradient jumps near x (a kink), the
    largest jumps `MAX_KINKS` at most, sorted; and per leaf all the indices that jumped
    (sorted, int64), so that the ones left out can be counted.

    `gradient_at(leaves)` is the analytic gradient (float64, one array per leaf) at
    other leaves, or None when it cannot be had there; `analytic` the gradient at x
    (its largest element per leaf sets the leaf's tolerance, rtol times it).
    """
    jumps = [np.zeros(x.size) for x in leaves]
    for _ in range(TRIES):
        vs = transverse(leaves, rng)
        wide = _differences(leaves, gradient_at, vs, JITTER)
        if wide is None:
            break
        excess = [_excess(d, g, rtol) for d, g in zip(wide, analytic)]
        if any(e is not None and np.any(e > 0) for e in excess):
            # a kink's jump stays as the step shrinks; a smooth gradient's change shrinks
            # with it (at a zero gradient every change passed the tolerance, rtol x 0:
            # sum(x * x) at x = 0 was 300,000 kinks)
            narrow = _differences(leaves, gradient_at, vs, JITTER / SHRINK)
            if narrow is None:
                break
            for e, d, n in zip(excess, wide, narrow):
                if e is not None and d is not None and n is not None:
                    e[n[1] <= d[1] * STAYS] = 0.0
        for k, e in enumerate(excess):
            if e is not None:
                jumps[k] = np.fmax(jumps[k], e)
    out, every = [], []
    for jump in jumps:
        every.append(idx := np.flatnonzero(jump > 0))
        if idx.size > MAX_KINKS:  # the largest first; a rule wrong at kinks is wrong at many
            idx = np.sort(idx[np.argsort(-jump[idx], kind="stable")[:MAX_KINKS]])
        out.append(idx)
    return out, every


SHRINK = 4.0  # the second, shorter step: JITTER / SHRINK
STAYS = 0.5  # a jump is a kink's when at least this much of it stays at the shorter step


Difference = tuple[np.ndarray, np.ndarray] | None  # (p, |p - m|) flat, or None: misshapen


def _differences(
    leaves: Sequence[np.ndarray], gradient_at: GradientAt, vs: Sequence[np.ndarray], eps: float
) -> list[Difference] | None:
    """Per leaf, the analytic gradients at x + eps v and x - eps v as (|p| + |m|, |p - m|),
    flat; None when the gradient cannot be had there."""
    plus = gradient_at([x + eps * v for x, v in zip(leaves, vs)])
    minus = gradient_at([x - eps * v for x, v in zip(leaves, vs)])
    if plus is None or minus is None:
        return None
    out: list[Difference] = []
    for p, m, x in zip(plus, minus, leaves):
        if p.shape != x.shape or m.shape != x.shape:
            out.append(None)
            continue
        with np.errstate(invalid="ignore"):
            sizes = (np.abs(p) + np.abs(m)).reshape(-1)
            out.append((sizes, np.nan_to_num(np.abs(p - m), nan=0.0).reshape(-1)))
    return out


def _excess(d: Difference, g: np.ndarray, rtol: float) -> np.ndarray | None:
    """How far each coordinate's change passes the tolerance (rtol times the leaf's largest
    gradient, and rtol times its size there); None for a misshapen leaf."""
    if d is None or d[1].size != g.size:
        return None
    finite = np.abs(g[np.isfinite(g)])
    tol = rtol * float(finite.max(initial=0.0))
    with np.errstate(invalid="ignore"):
        excess = d[1] - tol - rtol * d[0]
    return np.nan_to_num(excess, nan=0.0)


def tie_values(leaves: Sequence[np.ndarray], kinks: Sequence[np.ndarray]) -> list[float]:
    """The values that two or more kink coordinates hold (inputs tied in a max), the most
    common first, `MAX_TIE_DIRECTIONS` at most."""
    counts: dict[float, int] = {}
    for x, idx in zip(leaves, kinks):
        for v in x.reshape(-1)[idx].tolist():
            counts[v] = counts.get(v, 0) + 1
    ties = sorted((v for v, n in counts.items() if n > 1), key=lambda v: -counts[v])
    return ties[:MAX_TIE_DIRECTIONS]


def tie_candidates(
    leaves: Sequence[np.ndarray], kinks: Sequence[np.ndarray], value: float
) -> list[list[np.ndarray]]:
    """Directions that shift every input holding `value` together: in all leaves with a
    kink there, then in each pair of them, then in each one alone. A tie in a max is
    smooth along one of them (every tied element moves, and so does the max; an element
    equal to it elsewhere, below its own max, moves without crossing anything); zeros at
    ReLU kinks in another argument are left out by the pairs and singles."""
    holders = [
        k for k, (x, idx) in enumerate(zip(leaves, kinks)) if np.any(x.reshape(-1)[idx] == value)
    ]
    subsets = [tuple(holders)]
    if len(holders) > 2:
        subsets += [(a, b) for i, a in enumerate(holders) for b in holders[i + 1 :]]
    if len(holders) > 1:
        subsets += [(a,) for a in holders]
    return [
        unit(
            [
                np.where(x == value, 1.0, 0.0) if k in ks else np.zeros_like(x)
                for k, x in enumerate(leaves)
            ]
        )
        for ks in subsets
    ]


def kink_shift(
    leaves: Sequence[np.ndarray], kinks: Sequence[np.ndarray]
) -> list[np.ndarray] | None:
    """The direction that moves every kink coordinate up together (each leaf's part times
    its scale), or None when there is no kink. Its two sides put the kinks' inputs on one
    side together where biases and inputs sit at zero: the pieces that relu'(0) = 1 and
    relu'(0) = 0 compose, even behind other kinks."""
    if not any(idx.size for idx in kinks):
        return None
    us = []
    for x, idx in zip(leaves, kinks):
        u = np.zeros(x.size)
        u[idx] = scale(x)
        us.append(u.reshape(x.shape))
    return us
