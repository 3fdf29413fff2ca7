"""The call trace of each way to get a value and its gradient, and the scalar examples.

`square` is wrapped in a counter (a primitive of the tape whose forward and derivative
append their names to a list): the lesson's naive way (the value, then `gradient(at:)`,
which runs the forward pass again) calls `square` twice; value-with-chain (an op that
returns its value and its pullback, as `fcgrad.strategies.vwc` does) and the tape's
`value_and_grad` call it once.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops
from fcgrad.engine.autodiff import grad, value_and_grad
from fcgrad.engine.tape import custom_vjp
from fcgrad.lesson.report import Check, Section

AT = 3.0  # where the traced ways take the value and gradient of x^2
SCALAR_TOL = 1e-6  # d/dx x^2 against 2x, float32
SIN_COS_AT = 3.14
SIN_COS_LESSON = -3.0501623  # the lesson's float32 value
SIN_COS_TOL = 1e-4  # float32 against the float64 derivative (x^2 rounds to float32)

SQUARE, DERIVATIVE, PULLBACK = "square", "square'", "pullback"


def counted_square(calls: list[str]) -> Callable[[Any], Any]:
    """x^2 as a tape primitive whose forward appends "square" to `calls` and whose
    derivative rule appends "square'"."""

    def square(x: Any) -> Any:
        calls.append(SQUARE)
        return np.square(x)

    def derivative(g: Any, ans: Any, x: Any) -> Any:
        calls.append(DERIVATIVE)
        return ops.mul(g, ops.mul(x, 2.0))

    return custom_vjp(square, derivative, name="counted_square")


def naive(x: np.float32, calls: list[str]) -> tuple[Any, Any]:
    """The lesson's first way: the value, then `gradient(at:)`, which runs square again."""
    square = counted_square(calls)
    value = square(x)
    return value, grad(square)(x)


def value_with_chain(x: np.float32, calls: list[str]) -> tuple[Any, Any]:
    """The vwc way: one call returns the value and its pullback; the pullback gives the
    gradient without running square again."""
    square = counted_square(calls)

    def square_vwc(x: Any) -> tuple[Any, Callable[[Any], Any]]:
        def pullback(g: Any) -> Any:
            calls.append(PULLBACK)
            return g * (x * np.float32(2))

        return square(x), pullback

    value, pullback = square_vwc(x)
    return value, pullback(np.float32(1))


def tape(x: np.float32, calls: list[str]) -> tuple[Any, Any]:
    """The tape's `value_and_grad`: square recorded once, its rule replayed once."""
    return value_and_grad(counted_square(calls))(x)


WAYS: dict[str, tuple[Callable[[np.float32, list[str]], tuple[Any, Any]], dict[str, int]]] = {
    "value, then gradient(at:)": (naive, {SQUARE: 2, DERIVATIVE: 1}),
    "value with chain": (value_with_chain, {SQUARE: 1, PULLBACK: 1}),
    "tape value_and_grad": (tape, {SQUARE: 1, DERIVATIVE: 1}),
}


def call_trace(ways: dict[str, Any] | None = None) -> Section:
    """Run each way on x = AT with the counter; check its value, gradient and call counts."""
    x = np.float32(AT)
    checks: list[Check] = []
    rows: list[tuple[str, ...]] = []
    data: dict[str, object] = {}
    for way, (fn, expected) in (ways or WAYS).items():
        calls: list[str] = []
        value, g = fn(x, calls)
        counts = dict(collections.Counter(calls))
        for name in sorted({*expected, *counts}, key=[SQUARE, DERIVATIVE, PULLBACK].index):
            n, want = counts.get(name, 0), expected.get(name, 0)
            checks.append(Check(f"{way}: {name}", f"{n}x", f"{want}x", n == want))
        v, d = float(value), float(g)
        ok = v == AT * AT and d == 2 * AT
        checks.append(Check(f"{way}: value, grad", f"{v:g}, {d:g}", f"{AT * AT:g}, {2 * AT:g}", ok))
        rows.append((way, " -> ".join(calls)))
        data[way] = {"calls": calls, "counts": counts, "value": v, "gradient": d}
    notes = [
        f"x = {AT:g}; square' is the tape's derivative rule, pullback the vwc closure",
        "naive runs square again inside gradient(at:); the other two run it once",
    ]
    return Section(
        "call_trace",
        f"Call trace: value and gradient of x^2 at {AT:g}",
        checks,
        ("way", "calls, in order"),
        rows,
        notes,
        data,
    )


def scalars() -> Section:
    """d/dx x^2 at 0, 0.1, ..., 0.9 (= 2x) and d/dx [sin(x^2) + cos(x^2)] at 3.14, float32,
    by `fcgrad.grad`."""
    checks: list[Check] = []
    squares = []
    for i in range(10):
        x = np.float32(i / 10)
        g = float(grad(lambda t: t * t)(x))
        want = float(2 * x)
        squares.append({"x": float(x), "gradient": g, "expected": want})
        ok = math.isfinite(g) and abs(g - want) <= SCALAR_TOL
        checks.append(Check(f"d/dx x^2 at {x:.1f}", f"{g:.7g}", f"2x = {want:.7g}", ok))
    x = np.float32(SIN_COS_AT)
    g = float(grad(lambda t: ops.sin(t * t) + ops.cos(t * t))(x))
    x64 = float(x)
    exact = 2 * x64 * (math.cos(x64 * x64) - math.sin(x64 * x64))
    ok = math.isfinite(g) and abs(g - exact) <= SIN_COS_TOL
    checks.append(
        Check("d/dx sin(x^2)+cos(x^2) @3.14", f"{g:.8g}", f"{exact:.8g} ± {SIN_COS_TOL:g}", ok)
    )
    notes = [
        "float32 by fcgrad.grad; 2x(cos x^2 - sin x^2) in float64 beside it;",
        f"the lesson's float32 value is {SIN_COS_LESSON}",
    ]
    data: dict[str, object] = {
        "square": squares,
        "sin_cos": {"x": x64, "gradient": g, "exact": exact, "lesson": SIN_COS_LESSON},
    }
    return Section("scalars", "Scalar examples", checks, notes=notes, data=data)
