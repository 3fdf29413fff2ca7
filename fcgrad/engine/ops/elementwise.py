"""The elementwise ops: arithmetic with broadcasting, powers, exp and log, sin and cos,
maximum, the activations (relu, leaky_relu, tanh, sigmoid) and abs, with the masks their
rules use (`positive`, `leaky_slope`, `sign`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine.autodiff import Box, defvjp, nondiff_primitive, primitive, shape_of
from fcgrad.engine.ops.broadcasting import unbroadcast


@primitive
def neg(x: Any) -> Any:
    """-x."""
    return np.negative(x)


defvjp(neg, lambda g, ans, x: neg(g))


@primitive
def add(x: Any, y: Any) -> Any:
    """x + y, with numpy broadcasting."""
    return np.add(x, y)


defvjp(
    add,
    lambda g, ans, x, y: unbroadcast(g, shape_of(x)),
    lambda g, ans, x, y: unbroadcast(g, shape_of(y)),
)


@primitive
def sub(x: Any, y: Any) -> Any:
    """x - y, with numpy broadcasting."""
    return np.subtract(x, y)


defvjp(
    sub,
    lambda g, ans, x, y: unbroadcast(g, shape_of(x)),
    lambda g, ans, x, y: unbroadcast(neg(g), shape_of(y)),
)


@primitive
def mul(x: Any, y: Any) -> Any:
    """x * y, with numpy broadcasting."""
    return np.multiply(x, y)


defvjp(
    mul,
    lambda g, ans, x, y: unbroadcast(mul(g, y), shape_of(x)),
    lambda g, ans, x, y: unbroadcast(mul(g, x), shape_of(y)),
)


@primitive
def div(x: Any, y: Any) -> Any:
    """x / y, with numpy broadcasting."""
    return np.divide(x, y)


defvjp(
    div,
    lambda g, ans, x, y: unbroadcast(div(g, y), shape_of(x)),
    lambda g, ans, x, y: unbroadcast(neg(mul(g, div(ans, y))), shape_of(y)),
)


@primitive
def _div_where_nonzero(x: Any, y: Any) -> Any:
    """x / y where y != 0, else 0, with broadcasting: `std`'s rule at a constant input. Its
    rules are div's where y != 0 and 0 where y == 0, so second derivatives stay right."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.divide(x, y)
    return np.where(np.asarray(y) != 0, q, 0)


defvjp(
    _div_where_nonzero,
    lambda g, ans, x, y: unbroadcast(_div_where_nonzero(g, y), shape_of(x)),
    lambda g, ans, x, y: unbroadcast(neg(_div_where_nonzero(mul(g, ans), y)), shape_of(y)),
)


@primitive
def square(x: Any) -> Any:
    """x ** 2, elementwise."""
    return np.square(x)


defvjp(square, lambda g, ans, x: mul(g, mul(x, 2.0)))


def _exponent(p: Any) -> int | float:
    """A constant exponent as a Python number (which numpy does not let promote float32);
    TypeError for anything else (a traced value, an array, a bool, a complex)."""
    if isinstance(p, np.ndarray) and p.ndim == 0:
        p = p[()]
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        what = "a traced value" if isinstance(p, Box) else repr(p)
        raise TypeError(f"power: the exponent must be a constant real number, not {what}")
    return int(p) if isinstance(p, (int, np.integer)) else float(p)


@primitive
def power(x: Any, p: Any) -> Any:
    """x ** p, elementwise, for a constant real `p` (never traced: argument 1 is not
    differentiable). Any shape; x's dtype is kept (float32 stays float32, even for
    p = np.float64(0.5)). Rule: g * p * x ** (p - 1); exactly 0 for p == 0 (also at x = 0),
    g for p == 1; elsewhere numpy's values (x = 0 with p < 1: inf or NaN; x < 0 with a
    non-integer p: NaN). Raises TypeError for an exponent that is not a real number (a
    traced value, an array, a bool); numpy's ValueError for integer x ** negative int p.
    """
    return np.power(x, _exponent(p))


@nondiff_primitive
def _zeros_like(x: Any) -> Any:
    """Zeros of x's shape and dtype: the derivative of x ** 0."""
    return np.zeros_like(x)


def _power_vjp(g: Any, ans: Any, x: Any, p: Any) -> Any:
    q = _exponent(p)  # (a constant: branching on it is no branch on a value)
    if q == 0:
        return _zeros_like(x)
    if q == 1:
        return g
    return mul(g, mul(x if q == 2 else power(x, q - 1), q))


defvjp(power, _power_vjp, None)


@primitive
def sqrt(x: Any) -> Any:
    """Square root, elementwise; any shape, dtype kept; NaN for x < 0 (numpy). Rule:
    g / (2 sqrt(x)); at x = 0 that is numpy's g / 0: inf (NaN for g = 0)."""
    return np.sqrt(x)


defvjp(sqrt, lambda g, ans, x: div(g, mul(ans, 2.0)))


@primitive
def exp(x: Any) -> Any:
    """e ** x, elementwise."""
    return np.exp(x)


defvjp(exp, lambda g, ans, x: mul(g, ans))


@primitive
def log(x: Any) -> Any:
    """Natural logarithm, elementwise."""
    return np.log(x)


defvjp(log, lambda g, ans, x: div(g, x))


@primitive
def sin(x: Any) -> Any:
    """sin(x), elementwise (radians)."""
    return np.sin(x)


@primitive
def cos(x: Any) -> Any:
    """cos(x), elementwise (radians)."""
    return np.cos(x)


defvjp(sin, lambda g, ans, x: mul(g, cos(x)))  # (after cos: each rule uses the other op)
defvjp(cos, lambda g, ans, x: neg(mul(g, sin(x))))


@primitive
def maximum(x: Any, y: Any) -> Any:
    """Elementwise max(x, y), with broadcasting; a tie sends half the cotangent to each."""
    return np.maximum(x, y)


@nondiff_primitive
def _share(ans: Any, mine: Any, other: Any) -> Any:
    """The share of max(mine, other)'s cotangent that goes to `mine`: 1, 0, or 0.5 at a tie."""
    share = (np.asarray(mine) == ans) * np.where(np.asarray(other) == ans, 0.5, 1.0)
    return share.astype(np.result_type(ans))


def _max_share(g: Any, ans: Any, mine: Any, other: Any) -> Any:
    return unbroadcast(mul(g, _share(ans, mine, other)), shape_of(mine))


defvjp(
    maximum,
    lambda g, ans, x, y: _max_share(g, ans, x, y),
    lambda g, ans, x, y: _max_share(g, ans, y, x),
)


@primitive
def relu(x: Any) -> Any:
    """max(x, 0), elementwise; its derivative at exactly 0 is 0."""
    return np.maximum(x, 0)


@nondiff_primitive
def positive(x: Any) -> Any:
    """1 where x > 0, else 0, in x's dtype: the derivative of relu (0 at exactly 0)."""
    if type(x) is np.ndarray:  # a hot path
        return (x > 0).astype(x.dtype)
    return (np.asarray(x) > 0).astype(np.result_type(x))


defvjp(relu, lambda g, ans, x: mul(g, positive(x)))


LEAKY_SLOPE = 0.01  # leaky ReLU's slope for x < 0 (Maas, Hannun and Ng, 2013)


@primitive
def leaky_relu(x: Any, slope: float = LEAKY_SLOPE) -> Any:
    """x where x > 0, else slope * x, elementwise; dtype kept. Its derivative at exactly 0
    is `slope` (the left piece, as relu's is 0)."""
    return np.where(x > 0, x, x * slope)


@nondiff_primitive
def leaky_slope(x: Any, slope: float = LEAKY_SLOPE) -> Any:
    """1 where x > 0, else `slope`, in x's dtype: the derivative of leaky_relu."""
    dtype = np.result_type(x)
    return np.where(np.asarray(x) > 0, dtype.type(1), dtype.type(slope))


defvjp(leaky_relu, lambda g, ans, x, slope=LEAKY_SLOPE: mul(g, leaky_slope(x, slope)))


@primitive
def tanh(x: Any) -> Any:
    """tanh(x), elementwise; dtype kept. Rule: g * (1 - tanh(x) ** 2), from the output."""
    return np.tanh(x)


defvjp(tanh, lambda g, ans, x: mul(g, sub(1.0, square(ans))))


@primitive
def sigmoid(x: Any) -> Any:
    """1 / (1 + e ** -x), elementwise; dtype kept. Computed from e = e ** -|x| as 1 / (1 + e)
    for x >= 0 and e / (1 + e) below, so it never overflows and keeps its relative precision
    far out on both sides. Rule: g * s * (1 - s)."""
    e = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


defvjp(sigmoid, lambda g, ans, x: mul(g, mul(ans, sub(1.0, ans))))


@primitive
def abs(x: Any) -> Any:
    """|x|, elementwise (shadows the builtin in this module, as `sum` does); any shape, dtype
    kept. Rule: g * sign(x), so the derivative at exactly 0 is sign(0) = 0, a subgradient
    (any value in [-1, 1] is one)."""
    return np.abs(x)


@nondiff_primitive
def sign(x: Any) -> Any:
    """-1, 0 or 1 as x is negative, zero or positive (NaN for NaN), in x's dtype: the
    derivative of abs (0 at exactly 0). Recorded, never differentiated."""
    return np.sign(x)


defvjp(abs, lambda g, ans, x: mul(g, sign(x)))
