"""Judging the coordinates and directions of a `Problem`, and searching for wrong elements.

`check_leaf` judges an argument leaf's sampled coordinates and those at a kink;
`check_direction` a direction (random, or the shift of tied inputs, `tie_directions`);
`name_the_element` and `near_directions` find the element behind a failing direction, by
halving its support at the point or at a nearby point off its kinks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from fcgrad.checking.kinks import orthogonal, scale, tie_candidates, tie_values, unit
from fcgrad.checking.problem import Options, Problem
from fcgrad.checking.report import DirectionReport, Element, LeafReport, fold
from fcgrad.checking.verdict import SCANS, ArrayLine, Differences, differences, judge, within


def check_leaf(
    problem: Problem,
    i: int,
    analytic: np.ndarray,
    rng: np.random.Generator,
    opts: Options,
    near: np.ndarray,
    across: list[list[np.ndarray]],
) -> tuple[LeafReport, np.ndarray, np.ndarray]:
    """Judge `samples` (or all) coordinates of leaf i, and those in `near` (where the
    gradient jumps); atol None means rtol * max|n| of the leaf. Returns the report, the
    flat indices of the coordinates found at a kink, and those of all it judged."""
    x = problem.leaves[i]
    report = LeafReport(problem.names[i], x.shape, str(np.result_type(problem.given[i])))
    if analytic.shape != x.shape:  # already a structural failure; nothing to index
        report.n_failures = 1
        report.note = f"gradient shape {analytic.shape} vs argument shape {x.shape}"
        report.max_abs_error = report.max_rel_error = float("nan")
        return report, np.empty(0, np.intp), np.empty(0, np.intp)
    count = x.size if opts.full else min(opts.samples, x.size)
    picks = rng.choice(x.size, size=count, replace=False)
    report.detected = int(np.setdiff1d(near, picks).size)
    flat = np.union1d(picks, near).astype(np.intp)
    indices = [tuple(int(j) for j in np.unravel_index(int(k), x.shape)) for k in flat]
    lines = [
        ArrayLine(problem.value, problem.f0, problem.leaves, (i, ix), across) for ix in indices
    ]
    firsts = [differences(line, step_at(opts, x[ix])) for line, ix in zip(lines, indices)]
    atol = opts.atol
    if atol is None:  # the leaf's scale, from the first central differences
        atol = opts.rtol * max(
            (abs(d.central) for d in firsts if np.isfinite(d.central)), default=0.0
        )
    report.atol = atol
    kinks, jumps = [], set(near.tolist())
    for k, ix, line, first in zip(flat, indices, lines, firsts):
        if judge_coordinate(problem, report, analytic, ix, line, opts, first, k in jumps):
            kinks.append(k)
    return report, np.array(kinks, dtype=np.intp), flat


def judge_coordinate(
    problem: Problem,
    report: LeafReport,
    analytic: np.ndarray,
    ix: tuple[int, ...],
    line: ArrayLine,
    opts: Options,
    first: Differences | None = None,
    kinked: bool = False,
) -> bool:
    """Judge one coordinate into its leaf's report (`kinked`: the gradient jumps there);
    whether it lies at a kink."""
    x = problem.leaves[line.along[0]] if isinstance(line.along, tuple) else None
    assert x is not None
    a = float(analytic[ix])
    relative = opts.step * abs(float(x[ix]))
    scans = 1 if report.n_failures else SCANS  # once one failed, one scan a kink (exact apart)
    v = judge(line, a, step_at(opts, x[ix]), opts.rtol, report.atol, relative, first, scans, kinked)
    d = v.differences
    sides = (d.left, d.right, v.low, v.high) if v.at_kink else ()
    fold(report, v.kind, Element(ix, a, d.central, v.tol, *sides))
    return v.at_kink


def step_at(opts: Options, t: float) -> float:
    return opts.step * max(1.0, abs(float(t)))


def random_direction(leaves: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """v = D u: u a random unit vector, D scaling each leaf by max(1, its RMS), so that one
    large argument does not set the step of all the others (and every leaf moves by about
    `step` relative to its own size)."""
    us = unit([rng.standard_normal(x.shape) for x in leaves])
    return [u * scale(x) for u, x in zip(us, leaves)]


def check_direction(
    problem: Problem,
    analytic: list[np.ndarray],
    k: int,
    vs: list[np.ndarray],
    opts: Options,
    across: list[list[np.ndarray]],
    label: str = "",
    scans: int = SCANS,
) -> DirectionReport:
    """grad . v against the central difference of f along v, judged by the same rule as a
    coordinate (a direction across a kink must lie in the range the kinks allow)."""
    a = float(sum(float(np.sum(g * v)) for g, v in zip(analytic, vs)))
    spread = float(np.sqrt(sum(float(np.sum((g * v) ** 2)) for g, v in zip(analytic, vs))))
    atol = opts.rtol * spread if opts.atol is None else opts.atol  # |g . v| is about this size
    line = ArrayLine(
        problem.value, problem.f0, problem.leaves, vs, [orthogonal(a, vs) for a in across]
    )
    v = judge(line, a, opts.step, opts.rtol, atol, scans=scans)
    return DirectionReport(k, a, v.differences.central, float(v.tol), v.kind, v.low, v.high, label)


def tie_directions(
    problem: Problem,
    analytic: list[np.ndarray],
    kinks: list[np.ndarray],
    opts: Options,
    across: list[list[np.ndarray]],
) -> list[DirectionReport]:
    """For each value tied kink coordinates hold, the first direction shifting its holders
    together along which f has one slope on every side of the kinks (`tie_candidates`;
    as a max has, which moves with its tied inputs whichever is largest): there the check
    is exact. Its label names the tied elements (the first four). A value none of whose
    shifts qualifies (zeros at ReLU kinks, whose pieces slope differently) is judged by
    the coordinates and the random directions."""
    out = []
    for value in tie_values(problem.leaves, kinks):
        for us in tie_candidates(problem.leaves, kinks, value):
            d = check_direction(problem, analytic, -1, us, opts, across, scans=0)
            if not d.kink and _same_on_every_side(problem, us, d, opts, across):
                names = _tied_names(problem, kinks, us, value)
                more = f" and {len(names) - 4} more" if len(names) > 4 else ""
                label = (
                    f"tied inputs at {value:.6g} shifted together ({', '.join(names[:4])}{more})"
                )
                out.append(dataclasses.replace(d, label=label, members=tuple(names)))
                break
    return out


def _same_on_every_side(
    problem: Problem,
    us: list[np.ndarray],
    d: DirectionReport,
    opts: Options,
    across: list[list[np.ndarray]],
) -> bool:
    """Whether f's slope along `us` at the bases moved aside (each direction across, both
    sides, by a quarter step) is the slope at the point: so on every piece around it."""
    line = ArrayLine(
        problem.value, problem.f0, problem.leaves, us, [orthogonal(a, us) for a in across]
    )
    try:
        for j in range(len(across)):
            for sign in (1.0, -1.0):
                line.aside(sign * opts.step / 4, j)
                if not within(differences(line, opts.step).central, d.numeric, d.tol):
                    return False
    finally:
        line.at(0.0)
        line.aside(0.0)
    return True


def _tied_names(
    problem: Problem, kinks: list[np.ndarray], us: list[np.ndarray], value: float
) -> list[str]:
    """The elements a tie's shift moves, those at a kink first."""
    at_kink: list[str] = []
    others: list[str] = []
    for k, (u, idx) in enumerate(zip(us, kinks)):
        shape, kinked = problem.leaves[k].shape, set(idx.tolist())
        for j in np.flatnonzero(u.reshape(-1)):
            name = f"{problem.names[k]}{[int(i) for i in np.unravel_index(int(j), shape)]}"
            (at_kink if j in kinked else others).append(name)
    return at_kink + others


def name_the_element(
    problem: Problem,
    analytic: list[np.ndarray],
    dirs: list[DirectionReport],
    randoms: list[list[np.ndarray]],
    opts: Options,
    across: list[list[np.ndarray]],
    reports: Reports,
) -> None:
    """When a random direction fails and no coordinate did, find the element behind it
    (`locate`) and judge it into its leaf's report, so that the report names it."""
    failed = [vs for d, vs in zip(dirs, randoms) if not d.ok]
    if not failed or not all(leaf.ok for leaf in reports[0]):
        return
    found = locate(problem, analytic, failed[0], opts, across)
    if found is not None:
        _judge_found(problem, analytic, found, opts, across, reports)


Reports = tuple[list[LeafReport], list[set[int]]]  # the leaves' reports, the flat indices judged


def _judge_found(
    problem: Problem,
    analytic: list[np.ndarray],
    found: tuple[int, tuple[int, ...]],
    opts: Options,
    across: list[list[np.ndarray]],
    reports: Reports,
) -> bool:
    """Judge a coordinate a search found into its leaf's report, unless it was judged
    already; whether it was new."""
    k, ix = found
    flat = int(np.ravel_multi_index(ix, problem.leaves[k].shape))
    leaves, judged = reports
    if flat in judged[k]:
        return False
    judged[k].add(flat)
    leaves[k].detected += 1
    line = ArrayLine(problem.value, problem.f0, problem.leaves, (k, ix), across)
    judge_coordinate(problem, leaves[k], analytic[k], ix, line, opts)
    return True


def locate(
    problem: Problem,
    analytic: list[np.ndarray],
    vs: list[np.ndarray],
    opts: Options,
    across: list[list[np.ndarray]],
) -> tuple[int, tuple[int, ...]] | None:
    """The element behind a failing direction, found by halving its support (group
    testing: about 2 log2(n) directional checks): (leaf, index), or None.

    The coordinates of all leaves are taken in one order; the half whose part of grad . v
    fails (the worse, if both do) is kept. Stops, finding nothing, when neither half fails.
    """
    sizes = np.cumsum([0, *(v.size for v in vs)])
    lo, hi = 0, int(sizes[-1])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        halves = [(lo, mid), (mid, hi)]
        found = [_part(problem, analytic, vs, sizes, a, b, opts, across) for a, b in halves]
        bad = [(excess, half) for excess, half in zip(found, halves) if excess > 1]
        if not bad:
            return None
        lo, hi = max(bad)[1]
    k = int(np.searchsorted(sizes, lo, side="right")) - 1
    return k, tuple(int(j) for j in np.unravel_index(lo - int(sizes[k]), vs[k].shape))


NEAR = 100  # the nearby point's distance from x, in steps


def near_directions(
    problem: Problem,
    analytic: list[np.ndarray],
    gradient_at: Callable[[list[np.ndarray]], list[np.ndarray] | None],
    randoms: list[list[np.ndarray]],
    opts: Options,
    across: list[list[np.ndarray]],
    reports: Reports,
) -> list[DirectionReport]:
    """The random directions again at a nearby point x + NEAR step w (w the transverse
    direction), off the kinks at x: along a unit direction they lie about NEAR sqrt(n)
    steps away, so f is smooth there and an error that the wide range of the kinks at x
    hides shows (a wrong element away from the kinks, or one whose rule hides its own
    jump). The element behind a failure is then found there and judged at x."""
    leaves = reports[0]
    origin = [x.copy() for x in problem.leaves]
    f0, found = problem.f0, None
    try:
        for x, x0, w in zip(problem.leaves, origin, across[0]):  # (a random direction)
            np.add(x0, NEAR * opts.step * w, out=x)
        problem.f0 = problem.value()
        near = gradient_at(problem.leaves)
        if near is None or not all(np.all(np.isfinite(g)) for g in near):
            return []
        dirs = [
            check_direction(problem, near, k, vs, opts, across, f"random direction {k} near x")
            for k, vs in enumerate(randoms)
        ]
        failed = [vs for d, vs in zip(dirs, randoms) if not d.ok]
        if failed and all(leaf.ok for leaf in leaves):
            found = locate(problem, near, failed[0], opts, across)
        if found is not None:  # judged here, off the kinks, in case it passes at x
            k, ix = found
            there = LeafReport(
                leaves[k].name, leaves[k].shape, leaves[k].dtype, atol=leaves[k].atol
            )
            line = ArrayLine(problem.value, problem.f0, problem.leaves, (k, ix), across)
            judge_coordinate(problem, there, near[k], ix, line, opts)
    finally:
        for x, x0 in zip(problem.leaves, origin):
            np.copyto(x, x0)
        problem.f0 = f0
    if found is not None:
        _judge_found(problem, analytic, found, opts, across, reports)
        k = found[0]
        if leaves[k].ok and there.failures:  # right at x (inside its kinks' range): wrong here
            fold(leaves[k], "fail", dataclasses.replace(there.failures[0], near=True))
            leaves[k].checked -= 1  # the coordinate was counted once already
    return dirs


def _part(
    problem: Problem,
    analytic: list[np.ndarray],
    vs: list[np.ndarray],
    sizes: np.ndarray,
    lo: int,
    hi: int,
    opts: Options,
    across: list[list[np.ndarray]],
) -> float:
    """How many tolerances grad . v misses by, v restricted to positions [lo, hi)."""
    part = []
    for v, start in zip(vs, sizes[:-1]):
        w = np.zeros_like(v)
        a, b = max(lo - int(start), 0), min(hi - int(start), v.size)
        if a < b:
            w.reshape(-1)[a:b] = v.reshape(-1)[a:b]
        part.append(w)
    d = check_direction(problem, analytic, -1, part, opts, across, scans=1)  # (a guide only)
    if d.ok:
        return 0.0
    if d.kink:
        return max(d.low - d.analytic, d.analytic - d.high) / d.tol if d.tol > 0 else np.inf
    return abs(d.analytic - d.numeric) / d.tol if d.tol > 0 else np.inf
