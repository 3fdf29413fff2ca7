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

Kinks: every coordinate's one-sided differences come free with its central one. When
they disagree by more than the tolerance, and still do at step h/100 (a smooth f's
gap, about h |f''|, would shrink a hundredfold), f is not differentiable at t (ReLU at
exactly 0, maximum with a tie). If `a` lies between the left and right derivatives (a
subgradient: ReLU's 0 at 0, maximum's 1/2 at a tie) the coordinate is reported as a
*kink*, separately, not as a failure; if it lies outside, it fails, shown with both
one-sided derivatives. A coordinate that fails away from a kink is retried with steps
h/10 and h/100 under the tolerance of step h (a smaller step may confirm a value, never
loosen the test), so a kink merely near t does not cause a false failure. A step that
leaves f's domain (log just above 0) is replaced by one relative to |t|.

Evaluation is in float64: float32 inputs are promoted with a `PrecisionWarning`,
because float32 central differences are quantized (eps32 / h is about 0.02).
Relative errors are symmetric and floored: `|a - n| / max(|a|, |n|, 1e-300)`, so
0 vs 0 is 0 and tiny vs 0 is 1, never infinite.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad.autodiff import tree_flatten, tree_paths, vjp
from fcgrad.errors import ConfigError, GradCheckFailed
from fcgrad.jsonio import finite

EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)
RTOL = 1e-5
ROUNDOFF = 32 * EPS
REL_FLOOR = 1e-300
MAX_LISTED = 10  # failures and kinks listed per leaf


class PrecisionWarning(UserWarning):
    """Inputs were promoted from float32 to float64 for the finite differences."""


# ----------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class Element:
    """One coordinate: its index, the analytic and numeric derivatives, and the tolerance.

    At a kink, `left` and `right` are the one-sided derivatives (NaN elsewhere).
    """

    index: tuple[int, ...]
    analytic: float
    numeric: float
    tol: float
    left: float = float("nan")
    right: float = float("nan")

    @property
    def between(self) -> bool:
        """For a kink: the analytic value lies between the one-sided derivatives (to tol)."""
        lo, hi = min(self.left, self.right), max(self.left, self.right)
        return bool(lo - self.tol <= self.analytic <= hi + self.tol)


@dataclasses.dataclass
class LeafReport:
    """The sampled-coordinate check of one argument leaf (e.g. `params.layers[0].w`)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    checked: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst: Element | None = None
    failures: list[Element] = dataclasses.field(default_factory=list)
    kinks: list[Element] = dataclasses.field(default_factory=list)
    n_failures: int = 0
    n_kinks: int = 0

    @property
    def ok(self) -> bool:
        return self.n_failures == 0


@dataclasses.dataclass(frozen=True)
class DirectionReport:
    """One random-direction check: `grad . u` (analytic) against the directional difference."""

    index: int
    analytic: float
    numeric: float
    tol: float
    kink: bool = False

    @property
    def ok(self) -> bool:
        return self.kink or _within(self.analytic, self.numeric, self.tol)


@dataclasses.dataclass(frozen=True)
class StructuralCheck:
    """A property every correct gradient has; `detail` says what was seen when it fails."""

    name: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass
class GradCheckReport:
    """Everything `check_grads` found; `ok` is True only when no check failed.

    Kinks are reported but are not failures.
    """

    function: str
    value: float
    leaves: list[LeafReport]
    directions: list[DirectionReport]
    structural: list[StructuralCheck]
    rule: str
    seed: int

    @property
    def ok(self) -> bool:
        return (
            all(leaf.ok for leaf in self.leaves)
            and all(d.ok for d in self.directions)
            and all(s.ok for s in self.structural)
        )

    def problems(self) -> list[str]:
        """One line per failed check: which check, which argument, which element."""
        lines = [f"structure: {s.name}: {s.detail}" for s in self.structural if not s.ok]
        for leaf in self.leaves:
            if leaf.failures:
                e = leaf.failures[0]
                more = f" (and {leaf.n_failures - 1} more)" if leaf.n_failures > 1 else ""
                where = (
                    f"sampled coordinates: {leaf.name}{list(e.index)}: analytic {e.analytic:.8g}"
                )
                if np.isfinite(e.left):
                    lines.append(
                        f"{where} at a kink, outside the one-sided derivatives "
                        f"[{min(e.left, e.right):.8g}, {max(e.left, e.right):.8g}]{more}"
                    )
                else:
                    lines.append(
                        f"{where} vs numeric {e.numeric:.8g}, |diff| "
                        f"{abs(e.analytic - e.numeric):.3g} > tol {e.tol:.3g}{more}"
                    )
        lines += [
            f"random direction {d.index}: analytic {d.analytic:.8g} vs numeric {d.numeric:.8g}, "
            f"|diff| {abs(d.analytic - d.numeric):.3g} > tol {d.tol:.3g} (full=True / --full "
            "finds the element)"
            for d in self.directions
            if not d.ok
        ]
        return lines

    def raise_if_failed(self) -> None:
        """Raise `GradCheckFailed` naming the first failed check, argument and element."""
        problems = self.problems()
        if problems:
            extra = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise GradCheckFailed(f"check_grads({self.function}): {problems[0]}{extra}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every leaf, direction and structural check, the rule and the verdict."""
        return {
            "function": self.function,
            "value": self.value,
            "ok": self.ok,
            "rule": self.rule,
            "seed": self.seed,
            "leaves": [{**dataclasses.asdict(leaf), "ok": leaf.ok} for leaf in self.leaves],
            "directions": [{**dataclasses.asdict(d), "ok": d.ok} for d in self.directions],
            "structural": [dataclasses.asdict(s) for s in self.structural],
            "problems": self.problems(),
        }

    def to_json(self) -> str:
        """`to_dict()` as JSON text (NaN and infinities as null)."""
        return json.dumps(finite(self.to_dict()), indent=2)


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

    def rebuild(self, xs: list[Any]) -> Any:
        """The arguments (a tuple) around float64 leaves, each of the kind the caller gave."""
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
    leaves = [_check_leaf(problem, i, g, rng, opts) for i, g in enumerate(analytic)]
    shapes_ok = all(g.shape == x.shape for g, x in zip(analytic, problem.leaves))
    n_dirs = (
        directions if shapes_ok else 0
    )  # a misshapen gradient already fails the structure check
    dirs = [_check_direction(problem, analytic, k, rng, opts) for k in range(n_dirs)]
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

    return _Problem(f, leaves, out, names, rebuild_given)


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
        _finite_check(value, g1),
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
        _finite_check(problem.f0, flat1),
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
        checks.append(_finite_check(value, grads, "at the inputs' own dtypes"))
    return checks


def _precision_check(problem: _Problem) -> StructuralCheck:
    name = "f is computed in float64"
    dtype = problem.out_dtype
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return StructuralCheck(
            name, False, f"f returns {dtype}: its central differences are quantized"
        )
    return StructuralCheck(name, True)


def _finite_check(value: Any, grads: list[Any], where: str = "") -> StructuralCheck:
    name = "value and gradients are finite" + (f" {where}" if where else "")
    bad = [i for i, g in enumerate(grads) if not np.all(np.isfinite(np.asarray(g, dtype=float)))]
    if not np.isfinite(float(np.asarray(value))):
        return StructuralCheck(name, False, f"f = {value}")
    if bad:
        return StructuralCheck(name, False, f"non-finite gradient in leaf {bad[0]}")
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


def _within(a: float, n: float, tol: float) -> bool:
    return bool(abs(a - n) <= tol)  # False for NaN: a NaN never passes


@dataclasses.dataclass(frozen=True)
class Differences:
    """Finite differences at one step: central, left and right, and the central one's noise."""

    central: float
    left: float
    right: float
    noise: float


def differences(
    f: Callable[[], float], f0: float, at: Callable[[float], None], h: float
) -> Differences:
    """Differences of f along `at`, which puts the input at offset s from the point (0: back);
    f0 is f at the point."""
    with np.errstate(all="ignore"):  # a step out of f's domain is handled, not warned about
        at(h)
        up = f()
        at(-h)
        down = f()
        at(0.0)
    noise = ROUNDOFF * (abs(up) + abs(down)) / (2 * h)
    return Differences((up - down) / (2 * h), (f0 - down) / h, (up - f0) / h, noise)


def judge(
    f: Callable[[], float],
    f0: float,
    at: Callable[[float], None],
    a: float,
    h: float,
    rtol: float,
    atol: float,
    relative: float = 0.0,
    first: Differences | None = None,
) -> tuple[str, Differences, float]:
    """(verdict, the differences used, the tolerance) for the analytic derivative `a`.

    `f` evaluates the function with the input wherever `at` last put it; `f0` is its
    value at the point; `h` the first step; the tolerance is atol + rtol |n| + noise.
    Verdicts:

    - 'pass' / 'fail': the central difference decides. A failure is retried at h/10
      and h/100 (a kink merely near the point), judged with the tolerance of step h:
      a smaller step may only confirm a value, never loosen the test.
    - 'kink' / 'kink-outside': the left and right differences disagree by more than
      the tolerance and still do at h/100 (for a smooth f their gap, about h |f''|,
      shrinks with h): f is not differentiable here. 'kink' when `a` lies between the
      one-sided derivatives (a subgradient, e.g. ReLU's 0 at 0), 'kink-outside' when not.

    A step that leaves f's domain (a non-finite value, e.g. log below 0) is replaced
    by `relative` (the step scaled to the coordinate's own size) or shrunk tenfold.
    `first`: the differences at step h when the caller has them already (not redone).
    """
    h, d = _finite_step(f, f0, at, h, relative, first)
    tol = atol + rtol * abs(d.central) + d.noise
    spread = abs(d.right - d.left)
    if spread > tol + 2 * ROUNDOFF * abs(f0) / h:
        small = differences(f, f0, at, h / 100)
        if abs(small.right - small.left) > spread / 2:
            lo, hi = min(small.left, small.right), max(small.left, small.right)
            tol_kink = atol + rtol * max(abs(lo), abs(hi)) + 100 * small.noise
            inside = lo - tol_kink <= a <= hi + tol_kink
            return ("kink" if inside else "kink-outside"), small, tol_kink
    if _within(a, d.central, tol):
        return "pass", d, tol
    for scale in (0.1, 0.01):
        smaller = differences(f, f0, at, h * scale)
        if _within(a, smaller.central, atol + rtol * abs(smaller.central) + d.noise):
            return "pass", smaller, tol
    return "fail", d, tol


def _finite_step(
    f: Callable[[], float],
    f0: float,
    at: Callable[[float], None],
    h: float,
    relative: float,
    first: Differences | None = None,
) -> tuple[float, Differences]:
    """A step whose differences are finite (f stays in its domain): h; else the step
    relative to the coordinate's own size (`relative`, e.g. 6e-12 at t = 1e-6, where
    log's domain ends 1e-6 away); else tenfold smaller, four times at most."""
    d = first if first is not None else differences(f, f0, at, h)
    if np.isfinite(d.central) or not np.isfinite(f0):
        return h, d
    h = relative if 0 < relative < h else h / 10
    d = differences(f, f0, at, h)
    for _ in range(4):
        if np.isfinite(d.central):
            break
        h /= 10
        d = differences(f, f0, at, h)
    return h, d


def _check_leaf(
    problem: _Problem, i: int, analytic: np.ndarray, rng: np.random.Generator, opts: _Options
) -> LeafReport:
    """Judge `samples` (or all) coordinates of leaf i; atol None means rtol * max|n| of the leaf."""
    x = problem.leaves[i]
    report = LeafReport(problem.names[i], x.shape, str(np.result_type(problem.given[i])))
    if analytic.shape != x.shape:  # already a structural failure; nothing to index
        report.n_failures = 1
        return report
    count = x.size if opts.full else min(opts.samples, x.size)
    picks = np.sort(rng.choice(x.size, size=count, replace=False))
    indices = [tuple(int(j) for j in np.unravel_index(int(k), x.shape)) for k in picks]
    firsts = [
        differences(problem.value, problem.f0, at_coordinate(x, ix), _step(opts, x[ix]))
        for ix in indices
    ]
    atol = opts.atol
    if atol is None:  # the leaf's scale, from the first central differences
        atol = opts.rtol * max(
            (abs(d.central) for d in firsts if np.isfinite(d.central)), default=0.0
        )
    for ix, first in zip(indices, firsts):
        verdict, d, tol = judge(
            problem.value,
            problem.f0,
            at_coordinate(x, ix),
            float(analytic[ix]),
            _step(opts, x[ix]),
            opts.rtol,
            atol,
            relative=opts.step * abs(float(x[ix])),
            first=first,
        )
        sides = (d.left, d.right) if verdict.startswith("kink") else (float("nan"),) * 2
        _fold(report, verdict, Element(ix, float(analytic[ix]), d.central, tol, *sides))
    return report


def _step(opts: _Options, t: float) -> float:
    return opts.step * max(1.0, abs(float(t)))


def at_coordinate(x: np.ndarray, ix: tuple[int, ...]) -> Callable[[float], None]:
    """Put x[ix] at its original value plus s (exactly back at s = 0)."""
    t = float(x[ix])

    def at(s: float) -> None:
        x[ix] = t + s if s else t

    return at


def _fold(report: LeafReport, verdict: str, e: Element) -> None:
    """Count one judged coordinate into the leaf's report (kinks apart from the errors)."""
    report.checked += 1
    if verdict == "kink-outside":  # not differentiable, and not a subgradient either
        report.n_failures += 1
        if len(report.failures) < MAX_LISTED:
            report.failures.append(e)
        return
    if verdict == "kink":
        report.n_kinks += 1
        if len(report.kinks) < MAX_LISTED:
            report.kinks.append(e)
        return
    err = abs(e.analytic - e.numeric)
    if verdict == "fail" or not np.isfinite(err):
        report.n_failures += 1
        if len(report.failures) < MAX_LISTED:
            report.failures.append(e)
    if not np.isfinite(err):
        if np.isfinite(report.max_abs_error):  # the first NaN becomes the worst and stays
            report.worst = e
        report.max_abs_error = report.max_rel_error = float("nan")
        return
    if report.worst is None or err > report.max_abs_error:
        report.worst = e
    rel = err / max(abs(e.analytic), abs(e.numeric), REL_FLOOR)
    report.max_abs_error = max(report.max_abs_error, err)
    report.max_rel_error = max(report.max_rel_error, rel)


def _check_direction(
    problem: _Problem, analytic: list[np.ndarray], k: int, rng: np.random.Generator, opts: _Options
) -> DirectionReport:
    """grad . v against the central difference of f along v = D u: u a random unit vector,
    D scaling each leaf by max(1, its RMS), so that one large argument does not set the step
    of all the others (and every leaf moves by about `step` relative to its own size)."""
    us = [rng.standard_normal(x.shape) for x in problem.leaves]
    norm = np.sqrt(sum(float(np.sum(u * u)) for u in us)) or 1.0
    vs = [
        u / norm * max(1.0, float(np.sqrt(np.mean(x * x))) if x.size else 1.0)
        for u, x in zip(us, problem.leaves)
    ]
    a = float(sum(float(np.sum(g * v)) for g, v in zip(analytic, vs)))
    origin = [x.copy() for x in problem.leaves]

    def at(s: float) -> None:
        for x, x0, v in zip(problem.leaves, origin, vs):
            np.add(x0, s * v, out=x)

    spread = float(np.sqrt(sum(float(np.sum((g * v) ** 2)) for g, v in zip(analytic, vs))))
    atol = opts.rtol * spread if opts.atol is None else opts.atol  # |g . v| is about this size
    verdict, d, tol = judge(problem.value, problem.f0, at, a, opts.step, opts.rtol, atol)
    # across a kink a direction sees no derivative at all: reported, never a failure
    return DirectionReport(k, a, d.central, float(tol), kink=verdict.startswith("kink"))
