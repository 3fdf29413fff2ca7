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
coordinate where the analytic gradient jumps near x is judged (`fcgrad.checking.kinks`),
and inputs tied at a kink are also shifted together, a direction along which a max is
smooth, so a tie rule whose shares do not sum to one fails. A coordinate that fails away
from a kink is retried with steps h/10 and h/100 under the tolerance of step h, so a
kink merely near t does not cause a false failure. A step that leaves f's domain (log
just above 0) is replaced by one relative to |t|.

Evaluation is in float64: float32 inputs are promoted with a `PrecisionWarning`,
because float32 central differences are quantized (eps32 / h is about 0.02).
Relative errors are symmetric and floored: `|a - n| / max(|a|, |n|, 1e-300)`, so
0 vs 0 is 0 and tiny vs 0 is 1, never infinite.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad.autodiff import tree_flatten, tree_paths, vjp
from fcgrad.checking.kinks import (
    find_kinks,
    kink_shift,
    orthogonal,
    scale,
    tie_candidates,
    tie_values,
    transverse,
    unit,
)
from fcgrad.checking.report import (
    DirectionReport,
    Element,
    GradCheckReport,
    LeafReport,
    StructuralCheck,
    fold,
)
from fcgrad.checking.verdict import SCANS, ArrayLine, Differences, differences, judge
from fcgrad.errors import ConfigError

EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)
RTOL = 1e-5


class PrecisionWarning(UserWarning):
    """Inputs were promoted from float32 to float64 for the finite differences."""


# ----------------------------------------------------------------------------- the checker


@dataclasses.dataclass(frozen=True)
class _Options:
    samples: int
    full: bool
    step: float
    rtol: float
    atol: float | None


@dataclasses.dataclass
class _Problem:
    """The function under test at float64, flattened: leaves, their names, and f of the leaves."""

    f: Callable[..., Any]
    given: list[Any]  # the caller's leaves, as given (dtype, kind)
    leaves: list[np.ndarray]  # float64 copies, perturbed in place
    names: list[str]
    rebuild_given: Callable[[list[Any]], Any]  # the caller's structure around new leaves

    f0: float = float("nan")  # f at the unperturbed point
    out_dtype: np.dtype | None = None  # the dtype f returned its value in

    flat: bool = False  # every argument an array leaf: the arguments are the leaves

    def rebuild(self, xs: list[Any]) -> Any:
        """The arguments (a tuple) around float64 leaves, each of the kind the caller gave."""
        if self.flat:  # the common case, made short (f is evaluated thousands of times)
            return tuple(xs)
        return self.rebuild_given([_as_given(x, leaf) for x, leaf in zip(xs, self.given)])

    def value(self) -> float:
        """f at the current leaves, as a float; ConfigError if f does not return a real scalar."""
        return self.number(self.f(*self.rebuild(self.leaves)))

    def number(self, out: Any) -> float:
        if isinstance(out, (bool, np.bool_)) or not isinstance(
            out, (float, int, np.ndarray, np.generic)
        ):
            raise ConfigError(f"check_grads: f must return a real scalar, not {type(out).__name__}")
        arr = np.asarray(out)
        if arr.shape != ():
            raise ConfigError(f"check_grads: f must return a scalar, got shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise ConfigError(f"check_grads: f must return a real scalar, not {arr.dtype}")
        if self.out_dtype is None:
            self.out_dtype = arr.dtype
        return float(arr)


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
    `GradCheckFailed`). Raises ConfigError for unusable options or a non-scalar `f`.
    """
    _validate(samples, directions, step, rtol, atol, seed)
    args = tuple(args)
    problem = _float64_problem(f, args)
    value = problem.f0 = problem.value()
    analytic, structural = _analytic(problem, grad, args)
    rng = np.random.default_rng(seed)
    opts = _Options(samples, full, step, rtol, atol)
    shapes_ok = all(g.shape == x.shape for g, x in zip(analytic, problem.leaves))
    aside = np.random.default_rng([seed, 1])  # kinks and scans: a stream of their own
    near, jumped = (
        find_kinks(problem.leaves, analytic, _gradient_at(problem, grad), aside, rtol)
        if shapes_ok
        else ([np.empty(0, np.intp) for _ in analytic], [0 for _ in analytic])
    )
    # to scan across kinks: a random direction (both sides), then the kinks shifted
    # together (a second random one where there is no kink)
    shift = kink_shift(problem.leaves, near)
    across = [transverse(problem.leaves, aside)]
    across.append(shift if shift is not None else transverse(problem.leaves, aside))
    checked = [
        _check_leaf(problem, i, g, rng, opts, near[i], across) for i, g in enumerate(analytic)
    ]
    leaves = [report for report, _, _ in checked]
    for leaf, idx, n in zip(leaves, near, jumped):
        leaf.unjudged = n - idx.size  # past MAX_KINKS
    # a misshapen gradient already fails the structure check: no direction is taken
    randoms = [
        _random_direction(problem.leaves, rng) for _ in range(directions if shapes_ok else 0)
    ]
    # once a coordinate failed, the verdict stands: a direction across kinks gets one scan
    scans = SCANS if all(leaf.ok for leaf in leaves) else 1
    dirs = [
        _check_direction(problem, analytic, k, vs, opts, across, scans=scans)
        for k, vs in enumerate(randoms)
    ]
    if shapes_ok:
        dirs += _tie_directions(problem, analytic, [kinks for _, kinks, _ in checked], opts, across)
        judged = [set(flat.tolist()) for _, _, flat in checked]
        _name_the_element(problem, analytic, dirs, randoms, opts, across, (leaves, judged))
        if all(leaf.ok for leaf in leaves) and (
            any(leaf.n_kinks for leaf in leaves) or any(d.kink for d in dirs)
        ):
            at = _gradient_at(problem, grad)
            dirs += _near(problem, analytic, at, randoms, opts, across, (leaves, judged))
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
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    if directions < 0:
        raise ConfigError(f"--directions must be 0 or more, got {directions}")
    if not 0 < step < 1:
        raise ConfigError(f"step must be in (0, 1), got {step}")
    if not rtol > 0 or (atol is not None and not atol >= 0):
        raise ConfigError(f"rtol must be > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}")


def _float64_problem(f: Callable[..., Any], args: tuple[Any, ...]) -> _Problem:
    """Flatten `args` and copy every leaf to a float64 array (warning for narrower floats)."""
    leaves, rebuild = tree_flatten(args)
    names = [f"args{p}" for p in tree_paths(args)]
    promoted, out = [], []
    for name, leaf in zip(names, leaves):
        kind = (
            np.asarray(leaf).dtype
            if isinstance(leaf, (np.ndarray, np.generic, float, int))
            else None
        )
        if kind is None or isinstance(leaf, (bool, np.bool_)) or kind.kind not in "fiu":
            what = kind if kind is not None else type(leaf).__name__
            raise ConfigError(
                f"check_grads: {name} is {what}; it differentiates real float arrays and numbers"
            )
        if kind.kind == "f" and kind.itemsize < 8:
            promoted.append(f"{name} ({kind})")
        out.append(np.array(leaf, dtype=np.float64))  # a copy: perturbed in place
    if promoted:
        warnings.warn(
            f"check_grads: {', '.join(promoted)} promoted to float64: central differences "
            "in a narrower float are quantized (eps32 / h ~ 0.02)",
            PrecisionWarning,
            stacklevel=3,
        )

    def rebuild_given(xs: list[Any]) -> Any:
        try:
            return rebuild(xs)
        except Exception as e:  # e.g. a dataclass whose __init__ rejects the new leaves
            raise ConfigError(
                f"check_grads: cannot rebuild the arguments: {type(e).__name__}: {e}"
            ) from None

    problem = _Problem(f, leaves, out, names, rebuild_given)
    problem.flat = len(leaves) == len(args) and all(type(a) is np.ndarray for a in args)
    return problem


def _as_given(x: np.ndarray, leaf: Any) -> Any:
    """A float64 leaf in the kind the caller gave: a float for a float, an array otherwise."""
    return float(x) if isinstance(leaf, (float, int)) and not isinstance(leaf, np.generic) else x


def _analytic(
    problem: _Problem, grad: Callable[..., Any] | None, given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    """The analytic gradient of every leaf (float64), and the structural checks."""
    if grad is None:
        return _tape_gradient(problem, given)
    return _user_gradient(problem, grad, given)


def _copies(xs: list[Any]) -> list[Any]:
    return [np.array(x) if isinstance(x, np.ndarray) else x for x in xs]


def _tape_gradient(
    problem: _Problem, given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    # on copies: the tape makes what it saves read-only, and the leaves must stay movable
    value, pullback = vjp(problem.f, *problem.rebuild(_copies(problem.leaves)))
    one = np.ones_like(np.asarray(value, dtype=np.float64))
    g1 = _flat(pullback(one))

    def at_given() -> tuple[Any, Any]:
        v, pb = vjp(problem.f, *problem.rebuild_given(_copies(problem.given)))
        return v, pb(np.ones_like(np.asarray(v)))

    checks = [
        *_given_checks(problem, given, at_given),
        _finite_check(value, g1, problem.names),
        _same_check("backward twice gives the same gradient", g1, _flat(pullback(one))),
        _zero_check(_flat(pullback(np.zeros_like(one)))),
        _same_check(
            "pullback is linear in the cotangent",
            [-2.5 * g for g in g1],
            _flat(pullback(-2.5 * one)),
            rtol=1e-12,
        ),
    ]
    return [np.asarray(g, dtype=np.float64) for g in g1], checks


def _user_gradient(
    problem: _Problem, grad: Callable[..., Any], given: tuple[Any, ...]
) -> tuple[list[np.ndarray], list[StructuralCheck]]:
    def call(leaves: list[Any], rebuild: Callable[[list[Any]], Any]) -> Any:
        args = rebuild(_copies(leaves))
        g = grad(*args)
        return g if len(args) != 1 or (isinstance(g, tuple) and len(g) == 1) else (g,)

    g1 = call(problem.leaves, problem.rebuild)
    flat1 = [_real_array(g, "grad") for g in _flat(g1)]
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
            [_real_array(g, "grad") for g in _flat(call(problem.leaves, problem.rebuild))],
        ),
    ]
    return [g.astype(np.float64) for g in flat1], checks


def _user_at_given(problem: _Problem, grad_at: Callable[..., Any]) -> tuple[Any, Any]:
    """f and the user's gradient at the caller's own inputs (copies of them)."""
    args = problem.rebuild_given(_copies(problem.given))
    return problem.f(*args), grad_at(problem.given, problem.rebuild_given)


def _real_array(g: Any, who: str) -> np.ndarray:
    """A gradient leaf as a numeric array; ConfigError for None, strings, objects."""
    arr = np.asarray(g) if isinstance(g, (np.ndarray, np.generic, float, int)) else None
    if arr is None or arr.dtype.kind not in "fiu":
        what = arr.dtype if arr is not None else type(g).__name__
        raise ConfigError(f"check_grads: {who} returned {what} where a gradient array belongs")
    return arr


def _flat(grads: Any) -> list[Any]:
    return tree_flatten(tuple(grads))[0]


def _given_checks(
    problem: _Problem, given: tuple[Any, ...], at_given: Callable[[], tuple[Any, Any]]
) -> list[StructuralCheck]:
    """At the caller's own inputs and dtypes: f is computed in float64 when given float64, the
    gradients have the inputs' structure, shapes and dtypes, and value and gradients are finite
    (a float32 overflow shows here, not after the promotion)."""
    name = "gradients have the inputs' shapes and dtypes"
    checks = [_precision_check(problem)]
    try:
        with np.errstate(all="ignore"):  # an overflow at the given dtype is reported below
            value, grads = at_given()
        grads = _flat(grads)
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


def _precision_check(problem: _Problem) -> StructuralCheck:
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


# ----------------------------------------------------------------------------- numeric side


def _gradient_at(
    problem: _Problem, grad: Callable[..., Any] | None
) -> Callable[[list[np.ndarray]], list[np.ndarray] | None]:
    """The analytic gradient (float64 leaves) at other float64 leaves, for finding kinks;
    None where it cannot be computed there."""

    def at(leaves: list[np.ndarray]) -> list[np.ndarray] | None:
        args = problem.rebuild(_copies(leaves))
        try:
            if grad is None:
                value, pullback = vjp(problem.f, *args)
                flat = _flat(pullback(np.ones_like(np.asarray(value, dtype=np.float64))))
            else:
                g = grad(*args)
                flat = _flat(g if len(args) != 1 or isinstance(g, tuple) else (g,))
            return [np.asarray(g, dtype=np.float64) for g in flat]
        except Exception:  # the function or gradient fails there: nothing is found
            return None

    return at


def _check_leaf(
    problem: _Problem,
    i: int,
    analytic: np.ndarray,
    rng: np.random.Generator,
    opts: _Options,
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
    firsts = [differences(line, _step(opts, x[ix])) for line, ix in zip(lines, indices)]
    atol = opts.atol
    if atol is None:  # the leaf's scale, from the first central differences
        atol = opts.rtol * max(
            (abs(d.central) for d in firsts if np.isfinite(d.central)), default=0.0
        )
    report.atol = atol
    kinks, jumps = [], set(near.tolist())
    for k, ix, line, first in zip(flat, indices, lines, firsts):
        if _judge_coordinate(problem, report, analytic, ix, line, opts, first, k in jumps):
            kinks.append(k)
    return report, np.array(kinks, dtype=np.intp), flat


def _judge_coordinate(
    problem: _Problem,
    report: LeafReport,
    analytic: np.ndarray,
    ix: tuple[int, ...],
    line: ArrayLine,
    opts: _Options,
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
    v = judge(line, a, _step(opts, x[ix]), opts.rtol, report.atol, relative, first, scans, kinked)
    d = v.differences
    sides = (d.left, d.right, v.low, v.high) if v.at_kink else ()
    fold(report, v.kind, Element(ix, a, d.central, v.tol, *sides))
    return v.at_kink


def _step(opts: _Options, t: float) -> float:
    return opts.step * max(1.0, abs(float(t)))


def _random_direction(leaves: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """v = D u: u a random unit vector, D scaling each leaf by max(1, its RMS), so that one
    large argument does not set the step of all the others (and every leaf moves by about
    `step` relative to its own size)."""
    us = unit([rng.standard_normal(x.shape) for x in leaves])
    return [u * scale(x) for u, x in zip(us, leaves)]


def _check_direction(
    problem: _Problem,
    analytic: list[np.ndarray],
    k: int,
    vs: list[np.ndarray],
    opts: _Options,
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


def _tie_directions(
    problem: _Problem,
    analytic: list[np.ndarray],
    kinks: list[np.ndarray],
    opts: _Options,
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
            d = _check_direction(problem, analytic, -1, us, opts, across, scans=0)
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
    problem: _Problem,
    us: list[np.ndarray],
    d: DirectionReport,
    opts: _Options,
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
                up, down = _at(line, opts.step), _at(line, -opts.step)
                if not abs((up - down) / (2 * opts.step) - d.numeric) <= d.tol:
                    return False
    finally:
        line.at(0.0)
        line.aside(0.0)
    return True


def _at(line: ArrayLine, s: float) -> float:
    line.at(s)
    return line.f()


def _tied_names(
    problem: _Problem, kinks: list[np.ndarray], us: list[np.ndarray], value: float
) -> list[str]:
    """The elements a tie's shift moves, those at a kink first."""
    at_kink: list[str] = []
    others: list[str] = []
    for k, (u, idx) in enumerate(zip(us, kinks)):
        shape = problem.leaves[k].shape
        for j in np.flatnonzero(u.reshape(-1)):
            name = f"{problem.names[k]}{[int(i) for i in np.unravel_index(int(j), shape)]}"
            (at_kink if j in set(idx.tolist()) else others).append(name)
    return at_kink + others


def _name_the_element(
    problem: _Problem,
    analytic: list[np.ndarray],
    dirs: list[DirectionReport],
    randoms: list[list[np.ndarray]],
    opts: _Options,
    across: list[list[np.ndarray]],
    reports: Reports,
) -> None:
    """When a random direction fails and no coordinate did, find the element behind it
    (`_locate`) and judge it into its leaf's report, so that the report names it."""
    failed = [vs for d, vs in zip(dirs, randoms) if not d.ok]
    if not failed or not all(leaf.ok for leaf in reports[0]):
        return
    found = _locate(problem, analytic, failed[0], opts, across)
    if found is not None:
        _judge_found(problem, analytic, found, opts, across, reports)


Reports = tuple[list[LeafReport], list[set[int]]]  # the leaves' reports, the flat indices judged


def _judge_found(
    problem: _Problem,
    analytic: list[np.ndarray],
    found: tuple[int, tuple[int, ...]],
    opts: _Options,
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
    _judge_coordinate(problem, leaves[k], analytic[k], ix, line, opts)
    return True


def _locate(
    problem: _Problem,
    analytic: list[np.ndarray],
    vs: list[np.ndarray],
    opts: _Options,
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


def _near(
    problem: _Problem,
    analytic: list[np.ndarray],
    gradient_at: Callable[[list[np.ndarray]], list[np.ndarray] | None],
    randoms: list[list[np.ndarray]],
    opts: _Options,
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
            _check_direction(problem, near, k, vs, opts, across, f"random direction {k} near x")
            for k, vs in enumerate(randoms)
        ]
        failed = [vs for d, vs in zip(dirs, randoms) if not d.ok]
        if failed and all(leaf.ok for leaf in leaves):
            found = _locate(problem, near, failed[0], opts, across)
        if found is not None:  # judged here, off the kinks, in case it passes at x
            k, ix = found
            there = LeafReport(
                leaves[k].name, leaves[k].shape, leaves[k].dtype, atol=leaves[k].atol
            )
            line = ArrayLine(problem.value, problem.f0, problem.leaves, (k, ix), across)
            _judge_coordinate(problem, there, near[k], ix, line, opts)
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
    problem: _Problem,
    analytic: list[np.ndarray],
    vs: list[np.ndarray],
    sizes: np.ndarray,
    lo: int,
    hi: int,
    opts: _Options,
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
    d = _check_direction(problem, analytic, -1, part, opts, across, scans=1)  # (a guide only)
    if d.ok:
        return 0.0
    if d.kink:
        return max(d.low - d.analytic, d.analytic - d.high) / d.tol if d.tol > 0 else np.inf
    return abs(d.analytic - d.numeric) / d.tol if d.tol > 0 else np.inf


__all__ = [
    "DirectionReport",
    "Element",
    "GradCheckReport",
    "LeafReport",
    "PrecisionWarning",
    "StructuralCheck",
    "check_grads",
]
