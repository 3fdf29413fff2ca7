"""`check_grads`: verify the gradient of any scalar numpy function against central differences.

What it checks, all seeded (`seed`) and labelled in the report:

1. *Sampled coordinates*: for `samples` coordinates of every argument leaf (all of
   them with `full=True`), the analytic derivative `a` against the float64 central
   difference `n = (f(t + h) - f(t - h)) / 2h`, `h = step * max(1, |t|)`.
2. *Random directions*: for `directions` random directions `v` over all leaves at
   once (a unit vector, each leaf's part scaled by max(1, its RMS)), `grad . v`
   against `(f(x + h v) - f(x - h v)) / 2h`: a check whose cost does not grow with the
   number of parameters, and that sees every coordinate.
3. *Structure*: f returns a float64 value for float64 inputs; gradients have their
   inputs' structure, shapes and dtypes; the value and the gradients are finite (also
   at the inputs' own dtypes, where float32 may overflow); with the tape (no `grad`
   given) the pullback gives the same result twice, zero for a zero cotangent, and is
   linear in the cotangent.

Tolerance, per element: `|a - n| <= atol + rtol * |n| + noise`, where
`noise = 32 eps (|f(t+h)| + |f(t-h)|) / 2h` bounds the float64 rounding of `f`
amplified by the division by 2h. Defaults, derived rather than guessed:
`step = eps ** (1/3)` (about 6e-6; it balances the h^2 truncation error against the
eps/h rounding error of a central difference, Numerical Recipes 5.7), which leaves
both errors near eps ** (2/3), about 4e-11, relative to f's scale; `rtol = 1e-5`
keeps five orders of margin over that for curvature and conditioning; `atol = rtol *
max|n|` over the leaf's checked coordinates, so that an element near zero is judged on
its argument's scale (a 0 vs 1e-20 difference is not a failure, a 1e-3 error in a
gradient of size 1e-3 is).

Kinks (the rule of `fcgrad.checking.verdict`, shared with the lesson's gradcheck):
where the one-sided differences disagree, and still do at step h/100, f is not
differentiable at the point. The analytic value passes there when it lies in the range
of derivatives the chain rule can give with a valid subgradient at each kink (a kink
alone: between the left and right derivatives); it is then reported as a *kink*, not a
failure. Outside that range it fails. Besides the `samples` coordinates, every
coordinate where the analytic gradient jumps near x is judged (`fcgrad.checking.kinks`;
2,048 per leaf at most, the largest jumps first), and inputs tied at a kink are also
shifted together, a direction along which a max is smooth, so a tie rule whose shares do
not sum to one fails. When only a direction fails, halving its support names the element
(at x, or at a nearby point off its kinks). A coordinate that fails away from a kink is
retried with steps h/10 and h/100 under the tolerance of step h, so a kink merely near t
does not cause a false failure. A step that leaves f's domain (log just above 0) is
replaced by one relative to |t|.

Evaluation is in float64: float32 inputs are promoted with a `PrecisionWarning`,
because float32 central differences are quantized (eps32 / h is about 0.02).
Relative errors are symmetric and floored: `|a - n| / max(|a|, |n|, 1e-300)`, so
0 vs 0 is 0 and tiny vs 0 is 1, never infinite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad.checking.kinks import find_kinks, kink_shift, transverse
from fcgrad.checking.problem import (
    Options,
    PrecisionWarning,
    Problem,
    copies,
    flat_grads,
    float64_problem,
    gradient_at,
)
from fcgrad.checking.report import (
    DirectionReport,
    Element,
    GradCheckReport,
    LeafReport,
    StructuralCheck,
)
from fcgrad.checking.search import (
    check_direction,
    check_leaf,
    name_the_element,
    near_directions,
    random_direction,
    tie_directions,
)
from fcgrad.checking.verdict import SCANS
from fcgrad.engine.autodiff import vjp
from fcgrad.engine.pytree import tree_flatten, tree_paths
from fcgrad.errors import ConfigError, UserCodeError

EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)
RTOL = 1e-5


def check_grads(
    f: Callable[..., Any],
    args: Sequence[Any],
    *,
    grad: Callable[..., Any] | None = None,
    samples: int = 20,
    full: bool = False,
    directions: int = 3,
    step: float = STEP,
    rtol: float = RTOL,
    atol: float | None = None,
    seed: int = 0,
) -> GradCheckReport:
    """Check the gradient of scalar-valued `f(*args)` (see the module docstring for the rules).

    `args` is a sequence of arguments: floats, numpy arrays, or pytrees of them
    (tuples, lists, dicts, dataclasses such as `fcgrad.Params`). The analytic
    gradient comes from the tape when `grad` is None, else from `grad(*args)`, which
    must return one gradient per argument (a tuple; a bare gradient for one argument).
    `atol` None means `rtol * max|n|` per leaf.

    Returns a `GradCheckReport` (call `.raise_if_failed()` to turn failures into a
    `GradCheckFailed`). Raises ConfigError for unusable options, UserCodeError for an
    `f` that returns no real scalar (or a `grad` that returns no gradient array).
    """
    _validate(samples, directions, step, rtol, atol, seed)
    args = tuple(args)
    problem = float64_problem(f, args)
    value = problem.f0 = problem.value()
    analytic, structural = _analytic(problem, grad, args)
    rng = np.random.default_rng(seed)
    opts = Options(samples, full, step, rtol, atol)
    shapes_ok = all(g.shape == x.shape for g, x in zip(analytic, problem.leaves))
    aside = np.random.default_rng([seed, 1])  # kinks and scans: a stream of their own
    near, jumped = (
        find_kinks(problem.leaves, analytic, gradient_at(problem, grad), aside, rtol)
        if shapes_ok
        else ([np.empty(0, np.intp) for _ in analytic], [np.empty(0, np.intp) for _ in analytic])
    )
    # to scan across kinks: a random direction (both sides), then the kinks shifted
    # together (a second random one where there is no kink)
    shift = kink_shift(problem.leaves, near)
    across = [transverse(problem.leaves, aside)]
    across.append(shift if shift is not None else transverse(problem.leaves, aside))
    checked = [
        check_leaf(problem, i, g, rng, opts, near[i], across) for i, g in enumerate(analytic)
    ]
    leaves = [report for report, _, _ in checked]
    for leaf, every, (_, _, flat) in zip(leaves, jumped, checked):
        leaf.unjudged = np.setdiff1d(every, flat).size  # past MAX_KINKS, and not sampled
    # a misshapen gradient already fails the structure check: no direction is taken
    randoms = [random_direction(problem.leaves, rng) for _ in range(directions if shapes_ok else 0)]
    # once a coordinate failed, the verdict stands: a direction across kinks gets one scan
    scans = SCANS if all(leaf.ok for leaf in leaves) else 1
    dirs = [
        check_direction(problem, analytic, k, vs, opts, across, scans=scans)
        for k, vs in enumerate(randoms)
    ]
    if shapes_ok:
        dirs += tie_directions(problem, analytic, [kinks for _, kinks, _ in checked], opts, across)
        judged = [set(flat.tolist()) for _, _, flat in checked]
        name_the_element(problem, analytic, dirs, randoms, opts, across, (leaves, judged))
        if all(leaf.ok for leaf in leaves) and (
            any(leaf.n_kinks for leaf in leaves) or any(d.kink for d in dirs)
        ):
            at = gradient_at(problem, grad)
            dirs += near_directions(problem, analytic, at, randoms, opts, across, (leaves, judged))
    atol_rule = f"{atol:g}" if atol is not None else f"{rtol:g}*max|n| per leaf"
    rule = (
        f"|a - n| <= atol + {rtol:g}*|n| + 32 eps (|f+| + |f-|)/2h, atol = {atol_rule}, "
        f"h = {step:.3g}*max(1, |t|)"
    )
    name = getattr(f, "__qualname__", None) or repr(f)
    return GradCheckReport(name, value, leaves, dirs, structural, rule, seed)


def _validate(
    samples: int, directions: int, step: float, rtol: float, atol: float | None, seed: int
) -> None:
    if samples < 1:
        raise ConfigError(f"samples must be at least 1, got {samples}", param="samples")
    if directions < 0:
        raise ConfigError(f"directions must be 0 or more, got {directions}", param="directions")
    if not 0 < step < 1:
        raise ConfigError(f"step must be in (0, 1), got {step}", param="step")
    if not rtol > 0 or (atol is not None and not atol >= 0):
        raise ConfigError(f"rtol must be > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if seed < 0:
        raise ConfigError(f"seed must be 0 or more, got {seed}", param="seed")


def _analytic(
    problem: Problem, grad: Callable[..., Any] | None, given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    """The analytic gradient of every leaf (float64), and the structural checks."""
    if grad is None:
        return _tape_gradient(problem, given)
    return _user_gradient(problem, grad, given)


def _tape_gradient(
    problem: Problem, given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    # on copies: the tape makes what it saves read-only, and the leaves must stay movable
    value, pullback = vjp(problem.f, *problem.rebuild(copies(problem.leaves)))
    one = np.ones_like(np.asarray(value, dtype=np.float64))
    g1 = flat_grads(pullback(one))

    def at_given() -> tuple[Any, Any]:
        v, pb = vjp(problem.f, *problem.rebuild_given(copies(problem.given)))
        return v, pb(np.ones_like(np.asarray(v)))

    checks = [
        *_given_checks(problem, given, at_given),
        _finite_check(value, g1, problem.names),
        _same_check("backward twice gives the same gradient", g1, flat_grads(pullback(one))),
        _zero_check(flat_grads(pullback(np.zeros_like(one)))),
        _same_check(
            "pullback is linear in the cotangent",
            [-2.5 * g for g in g1],
            flat_grads(pullback(-2.5 * one)),
            rtol=1e-12,
        ),
    ]
    return [np.asarray(g, dtype=np.float64) for g in g1], checks


def _user_gradient(
    problem: Problem, grad: Callable[..., Any], given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    def call(leaves: list[Any], rebuild: Callable[[list[Any]], Any]) -> Any:
        args = rebuild(copies(leaves))
        g = grad(*args)
        return g if len(args) != 1 or (isinstance(g, tuple) and len(g) == 1) else (g,)

    g1 = call(problem.leaves, problem.rebuild)
    flat1 = [_real_array(g, "grad") for g in flat_grads(g1)]
    paths = tree_paths(tuple(g1), "args")
    if paths != problem.names:
        detail = f"gradient leaves {paths[:4]} for argument leaves {problem.names[:4]}"
        return [np.full_like(leaf, np.nan) for leaf in problem.leaves], [
            StructuralCheck("gradient has the arguments' structure", False, detail)
        ]
    checks = [
        *_given_checks(problem, given, lambda: _user_at_given(problem, call)),
        _finite_check(problem.f0, flat1, problem.names),
        _same_check(
            "gradient is the same when computed twice",
            flat1,
            [_real_array(g, "grad") for g in flat_grads(call(problem.leaves, problem.rebuild))],
        ),
    ]
    return [g.astype(np.float64) for g in flat1], checks


def _user_at_given(problem: Problem, grad_at: Callable[..., Any]) -> tuple[Any, Any]:
    """f and the user's gradient at the caller's own inputs (copies of them)."""
    args = problem.rebuild_given(copies(problem.given))
    return problem.f(*args), grad_at(problem.given, problem.rebuild_given)


def _real_array(g: Any, who: str) -> np.ndarray:
    """A gradient leaf as a numeric array; UserCodeError for None, strings, objects."""
    arr = np.asarray(g) if isinstance(g, (np.ndarray, np.generic, float, int)) else None
    if arr is None or arr.dtype.kind not in "fiu":
        what = arr.dtype if arr is not None else type(g).__name__
        raise UserCodeError(f"check_grads: {who} returned {what} where a gradient array belongs")
    return arr


def _given_checks(
    problem: Problem, given: tuple[Any, ...], at_given: Callable[[], tuple[Any, Any]]
) -> list[StructuralCheck]:
    """At the caller's own inputs and dtypes: f is computed in float64 when given float64, the
    gradients have the inputs' structure, shapes and dtypes, and value and gradients are finite
    (a float32 overflow shows here, not after the promotion)."""
    name = "gradients have the inputs' shapes and dtypes"
    checks = [_precision_check(problem)]
    try:
        with np.errstate(all="ignore"):  # an overflow at the given dtype is reported below
            value, grads = at_given()
        grads = flat_grads(grads)
    except ConfigError:
        raise
    except Exception as e:  # the function fails at the given dtype: say so, do not crash
        return [
            *checks,
            StructuralCheck(name, False, f"at the given inputs: {type(e).__name__}: {e}"),
        ]
    inputs = tree_flatten(given)[0]
    if len(grads) != len(inputs):
        return [
            *checks,
            StructuralCheck(name, False, f"{len(grads)} gradient leaves for {len(inputs)} inputs"),
        ]
    shapes = StructuralCheck(name, True)
    for leaf_name, g, x in zip(problem.names, grads, inputs):
        kind = np.result_type(x)
        want = (np.shape(x), kind if kind.kind == "f" else np.dtype(np.float64))
        got = (np.shape(g), np.result_type(g))
        if got != want:
            detail = f"{leaf_name}: gradient is {got[0]} {got[1]}, input is {want[0]} {want[1]}"
            shapes = StructuralCheck(name, False, detail)
            break
    checks.append(shapes)
    if any(np.result_type(x) != np.float64 for x in inputs):
        checks.append(_finite_check(value, grads, problem.names, "at the inputs' own dtypes"))
    return checks


def _precision_check(problem: Problem) -> StructuralCheck:
    name = "f is computed in float64"
    dtype = problem.out_dtype
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return StructuralCheck(
            name, False, f"f returns {dtype}: its central differences are quantized"
        )
    return StructuralCheck(name, True)


def _finite_check(
    value: Any, grads: list[Any], names: list[str], where: str = ""
) -> StructuralCheck:
    """f and every gradient finite; the detail names the first bad leaf and element."""
    name = "value and gradients are finite" + (f" {where}" if where else "")
    if not np.isfinite(float(np.asarray(value))):
        return StructuralCheck(name, False, f"f = {value}")
    for leaf, g in zip(names, grads):
        bad = ~np.isfinite(np.asarray(g, dtype=float))
        if bad.any():
            ix = [int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)]
            first = np.asarray(g, dtype=float)[tuple(ix)] if bad.ndim else float(g)
            return StructuralCheck(
                name, False, f"{leaf}{ix}: {first} ({int(bad.sum())} non-finite)"
            )
    return StructuralCheck(name, True)


def _same_check(name: str, a: list[Any], b: list[Any], rtol: float = 0.0) -> StructuralCheck:
    """a and b agree leaf by leaf, to rtol times each leaf's largest magnitude (0: exactly)."""
    for i, (x, y) in enumerate(zip(a, b)):
        finite = np.abs(np.asarray(x))[np.isfinite(x)]
        scale = float(np.max(finite, initial=0.0))
        if not np.allclose(x, y, rtol=0.0, atol=rtol * scale, equal_nan=True):
            return StructuralCheck(
                name, False, f"leaf {i} differs by up to {np.max(np.abs(np.subtract(x, y))):.3g}"
            )
    return StructuralCheck(name, True)


def _zero_check(grads: list[Any]) -> StructuralCheck:
    name = "a zero cotangent gives zero gradients"
    for i, g in enumerate(grads):
        if np.any(np.asarray(g) != 0):
            return StructuralCheck(name, False, f"leaf {i} has max |g| = {np.max(np.abs(g)):.3g}")
    return StructuralCheck(name, True)


__all__ = [
    "DirectionReport",
    "Element",
    "GradCheckReport",
    "LeafReport",
    "PrecisionWarning",
    "StructuralCheck",
    "check_grads",
]
