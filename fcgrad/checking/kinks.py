"""Finding the coordinates at a kink, so that every one of them is judged.

Kinks are where hand-written rules go wrong (relu'(0), a tie in a max), and sampling
a few coordinates of a large argument easily skips the one that is wrong there. The
analytic gradient finds them all at once: on either side of a kink it differs by
the kink's jump, while a smooth gradient moves by only 2 eps |H v|. So the gradient
is computed at x + eps v and x - eps v for two random directions v (eps = 1e-9 of
each leaf's scale), and every coordinate where the two differ by more than the
tolerance is judged, beside the sampled ones. The gradient is evaluated there, one
billionth away, where a rule that is wrong only exactly at the kink is right: what
is found does not depend on the value being judged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

JITTER = 1e-9  # how far, relative to each leaf's scale, the gradient is taken on either side
TRIES = 2  # random directions: a sum of jumps that cancels along one rarely does along two
MAX_TIE_DIRECTIONS = 8  # directions that shift tied inputs together, largest groups first

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
) -> list[np.ndarray]:
    """Per leaf, the flat indices where the analytic gradient jumps near x (a kink).

    `gradient_at(leaves)` is the analytic gradient (float64, one array per leaf) at
    other leaves, or None when it cannot be had there; `analytic` the gradient at x
    (its largest element per leaf sets the leaf's tolerance, rtol times it).
    """
    found = [np.zeros(x.size, dtype=bool) for x in leaves]
    for _ in range(TRIES):
        vs = transverse(leaves, rng)
        plus = gradient_at([x + JITTER * v for x, v in zip(leaves, vs)])
        minus = gradient_at([x - JITTER * v for x, v in zip(leaves, vs)])
        if plus is None or minus is None:
            break
        for k, (p, m, g) in enumerate(zip(plus, minus, analytic)):
            if p.shape != g.shape or m.shape != g.shape:
                continue
            finite = np.abs(g[np.isfinite(g)])
            tol = rtol * float(finite.max(initial=0.0))
            with np.errstate(invalid="ignore"):
                jump = np.abs(p - m) > tol + rtol * (np.abs(p) + np.abs(m))
            found[k] |= jump.reshape(-1)
    return [np.flatnonzero(f) for f in found]


def tie_groups(
    leaves: Sequence[np.ndarray], kinks: Sequence[np.ndarray]
) -> list[tuple[float, list[tuple[int, int]]]]:
    """Kink coordinates that hold the same value, as (value, [(leaf, flat index), ...]),
    largest groups first: inputs tied in a max. Shifting a tie's inputs together moves the
    max smoothly, so along that direction the gradient must match exactly."""
    groups: dict[float, list[tuple[int, int]]] = {}
    for k, (x, idx) in enumerate(zip(leaves, kinks)):
        for j in idx:
            groups.setdefault(float(x.flat[j]), []).append((k, int(j)))
    ties = [(v, members) for v, members in groups.items() if len(members) > 1]
    ties.sort(key=lambda t: -len(t[1]))
    return ties[:MAX_TIE_DIRECTIONS]


def tie_direction(leaves: Sequence[np.ndarray], members: list[tuple[int, int]]) -> list[np.ndarray]:
    """The unit direction that moves every member of a tie by the same amount."""
    us = [np.zeros_like(x) for x in leaves]
    for k, j in members:
        us[k].flat[j] = 1.0
    return unit(us)
