"""The op set shared by the three strategies: numpy forward code with its VJP beside it.

Every op here is a `Primitive`: on plain numpy arrays it is the numpy function
(so `manual` and `vwc` call these for their forward passes), and on a traced
`Box` it records itself on the tape (so `tape` differentiates through them).
Each op's VJP rule sits right under its forward code, as one `defvjp` row, and
is written with the ops themselves, so rules can be differentiated again.

Broadcasting is undone in one place, `unbroadcast(g, shape)`.

Conventions: a rule `rule(g, ans, *args)` receives the output cotangent `g`
(shape of `ans`) and returns the argument's cotangent (shape of the argument).
Where an op is not differentiable, its rule returns a subgradient:

- ReLU's derivative at exactly 0 is 0 (the lesson's `relu_grad`, `(x > 0)`), and leaky
  ReLU's is its slope;
- `abs`'s at 0 is `sign(0)` = 0;
- `maximum` splits a tie evenly between its two arguments, as HIPS autograd does,
  and `max`/`min` split each output's cotangent evenly among the tied elements of
  its reduction (k tied elements get 1/k each);
- `std` at a constant input (std = 0) has gradient 0, never NaN.

A mask or other helper a rule needs is a `nondiff_primitive` (`positive`, `sign`),
so that a replayed tape (`fcgrad.engine.replay`) recomputes it on new values. Float32
stays float32: constants in rules are Python numbers, which numpy does not let
promote an array.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import Box, defvjp, defvjp_into, nondiff_primitive, primitive, shape_of
from fcgrad.errors import ConfigError, ShapeError

__all__ = [
    "abs",
    "add",
    "broadcast_to",
    "cos",
    "div",
    "exp",
    "expand_dims",
    "leaky_relu",
    "leaky_slope",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "mul",
    "neg",
    "positive",
    "power",
    "relu",
    "reshape",
    "sigmoid",
    "sign",
    "sin",
    "sqrt",
    "square",
    "squeeze",
    "std",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "unbroadcast",
    "var",
]


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum the cotangent `g` down to `shape`, undoing numpy broadcasting.

    Leading axes that broadcasting added are summed away; axes that were 1 in
    `shape` are summed with keepdims. The dtype of `g` is kept. Returns `g`
    itself when nothing was broadcast.
    """
    gshape = shape_of(g)
    if gshape == shape:
        return g
    extra = len(gshape) - len(shape)
    if extra:
        g = sum(g, axis=0 if extra == 1 else tuple(range(extra)))
    if 1 in shape:
        ones = tuple(i for i, n in enumerate(shape) if n == 1 and shape_of(g)[i] != 1)
        if ones:
            g = sum(g, axis=ones, keepdims=True)
    return g


def _nd(x: Any) -> int:
    """np.ndim, without numpy's dispatch for the common case of an array (a hot path)."""
    return x.ndim if type(x) is np.ndarray else np.ndim(x)


# ----------------------------------------------------------------------------- elementwise


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


# ----------------------------------------------------------------------------- linear algebra


@primitive
def matmul(x: Any, y: Any) -> Any:
    """x @ y for 1-D or 2-D operands (numpy's matmul rules); ShapeError for more dimensions."""
    if not (0 < _nd(x) <= 2 and 0 < _nd(y) <= 2):
        raise ShapeError(f"matmul: operands must be 1-D or 2-D, got {np.shape(x)} @ {np.shape(y)}")
    return np.matmul(x, y)


def _matmul_vjp_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if _nd(y) == 1:  # (..., k) @ (k,) -> (...)
        return mul(expand_dims(g, -1), y)
    if _nd(x) == 1:  # (k,) @ (k, n) -> (n,)
        return matmul(y, g)
    return matmul(g, transpose(y))


def _matmul_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if _nd(x) == 1:  # (k,) @ (k, n) -> (n,)
        return mul(expand_dims(x, -1), g) if _nd(y) == 2 else mul(g, x)
    if _nd(y) == 1:  # (m, k) @ (k,) -> (m,)
        return matmul(g, x)
    return matmul(transpose(x), g)


defvjp(matmul, _matmul_vjp_x, _matmul_vjp_y)
matmul.fwd_into = lambda x, y, out: np.matmul(x, y, out=out)
defvjp_into(
    matmul,
    0,
    lambda g, ans, x, y, out: (
        _matmul_vjp_x(g, ans, x, y)
        if np.ndim(y) == 1 or np.ndim(x) == 1
        else np.matmul(g, np.transpose(y), out=out)
    ),
)


# ----------------------------------------------------------------------------- reductions


@primitive
def sum(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """Sum over `axis` (all axes when None)."""
    if type(x) is np.ndarray and x.dtype.kind == "f":  # what np.sum runs, minus its dispatch
        return np.add.reduce(x, axis=axis, keepdims=keepdims)  # type: ignore[call-overload]
    return np.sum(x, axis=axis, keepdims=keepdims)


def _kept(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape of a reduction of `shape` over a valid `axis` with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    axes = {int(a) % len(shape) for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis)}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _keep(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """A reduced value (a cotangent, an output) with the reduced axes of `shape` as length 1,
    so that it broadcasts against the input."""
    return g if keepdims or axis is None else reshape(g, _kept(shape, axis))


def _restore(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Broadcast a reduced cotangent back to `shape`."""
    return broadcast_to(_keep(g, shape, axis, keepdims), shape)


defvjp(sum, lambda g, ans, x, axis=None, keepdims=False: _restore(g, shape_of(x), axis, keepdims))


@primitive
def mean(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over `axis` (all axes when None)."""
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize >= 4:
        # what np.mean does for these dtypes (the same sum, then one division), minus its
        # Python-level dispatch: a hot path
        total = np.add.reduce(x, axis=axis, keepdims=keepdims)  # type: ignore[call-overload]
        n = x.size // (total.size or 1)
        return total / n if type(total) is not np.ndarray else np.divide(total, n, out=total)
    return np.mean(x, axis=axis, keepdims=keepdims)


def _mean_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    n = np.size(x) // (np.size(ans) or 1)
    return _restore(div(g, float(n)), shape_of(x), axis, keepdims)  # divide before broadcasting


defvjp(mean, _mean_vjp)


@primitive
def max(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """The largest element over `axis`, as np.max (NaN if the reduction holds one). `axis`
    has numpy's meaning (None: all axes; an int or a tuple, negative counted from the end);
    x: a float array of any shape, dtype kept; keepdims keeps reduced axes as length 1.

    Rule: each output's cotangent goes to the elements equal to it, split evenly at a tie
    (k tied elements get g / k each: moving all k by t moves the max by t); a NaN output's
    goes to the NaNs. Raises numpy's ValueError for an empty reduction, AxisError for an
    axis out of range.
    """
    return np.max(x, axis=axis, keepdims=keepdims)


@primitive
def min(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """The smallest element over `axis`, as np.min; shapes, ties and errors as for `max`."""
    return np.min(x, axis=axis, keepdims=keepdims)


@nondiff_primitive
def _tie_share(x: Any, ans: Any, axis: Any, keepdims: bool) -> Any:
    """Each element's share of the cotangent of `ans` = max or min(x, axis): 1/k for each of
    the k elements equal to their reduction's `ans` (NaN counting as equal to NaN), else 0."""
    x = np.asarray(x)
    a = np.reshape(ans, _kept(x.shape, axis))
    hit = x == a
    if np.isnan(a).any():
        hit |= np.isnan(x) & np.isnan(a)
    share = hit / np.sum(hit, axis=axis, keepdims=True)
    return share.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def _extreme_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return mul(_keep(g, shape_of(x), axis, keepdims), _tie_share(x, ans, axis, keepdims))


defvjp(max, _extreme_vjp)
defvjp(min, _extreme_vjp)


def _dof(name: str, shape: tuple[int, ...], axis: Any, ddof: Any) -> float:
    """n - ddof for a reduction of `shape` over `axis` (n: the elements per reduction);
    ShapeError unless it is positive, and for an axis out of range or repeated."""
    nd = len(shape)
    given = range(nd) if axis is None else (axis,) if isinstance(axis, (int, np.integer)) else axis
    axes = [int(a) % nd for a in given if -nd <= a < nd]
    if len(axes) != len(given) or len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: axis {axis} is out of range or repeated for shape {shape}")
    n = math.prod(shape[a] for a in axes)
    if not n - ddof > 0:
        raise ShapeError(
            f"{name}: ddof={ddof} leaves n - ddof = {n - ddof:g} (n = {n} elements per "
            "reduction); it must be positive"
        )
    return float(n - ddof)


@primitive
def var(x: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
    """Variance over `axis`, as np.var: sum((x - mean) ** 2) / (n - ddof), n the number of
    elements per reduction (ddof=1: the unbiased estimate). `axis` has numpy's meaning (None:
    all axes; an int or a tuple, negative counted from the end). x: a float array of any
    shape, dtype kept; keepdims keeps the reduced axes as length 1.

    Rule: g * 2 (x - mean) / (n - ddof). Raises ShapeError when n - ddof <= 0 (numpy would
    warn and return inf or NaN) or for an axis out of range or repeated.
    """
    _dof("var", shape_of(x), axis, ddof)
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


@primitive
def std(x: Any, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Any:
    """Standard deviation over `axis`, as np.std: sqrt(var(x, axis, ddof)); axis, ddof,
    shapes, dtypes and errors as for `var`.

    Rule: g * (x - mean) / ((n - ddof) * std), and 0 where std == 0 or the reduction's
    elements are all equal (a constant input): 0 is a subgradient there (std is convex
    and smallest there), so the gradient is never NaN. `x - mean` is computed exactly 0
    for equal elements (np.mean of [0.1] * 3 is not 0.1, and their np.std is 1.4e-17).
    """
    _dof("std", shape_of(x), axis, ddof)
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


@nondiff_primitive
def _first(x: Any, axis: Any) -> Any:
    """The first element of each reduction of x over `axis`, with keepdims (a view)."""
    x = np.asarray(x)
    kept = _kept(x.shape, axis)
    return x[tuple(slice(0, 1) if k == 1 else slice(None) for k in kept)]


def _centered(x: Any, axis: Any) -> Any:
    """x - mean(x, axis), as d - mean(d) for d = x - (a first element): the same function
    of x (the shift, a constant of the tape, cancels), but exactly 0 for equal elements."""
    d = sub(x, _first(x, axis))
    return sub(d, mean(d, axis=axis, keepdims=True))


def _var_vjp(
    g: Any, ans: Any, x: Any, axis: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    shape = shape_of(x)
    scale = 2.0 / _dof("var", shape, axis, ddof)
    return mul(_keep(g, shape, axis, keepdims), mul(_centered(x, axis), scale))


def _std_vjp(
    g: Any, ans: Any, x: Any, axis: Any = None, ddof: Any = 0, keepdims: bool = False
) -> Any:
    shape = shape_of(x)
    denominator = mul(_keep(ans, shape, axis, keepdims), _dof("std", shape, axis, ddof))
    return mul(_keep(g, shape, axis, keepdims), _div_where_nonzero(_centered(x, axis), denominator))


defvjp(var, _var_vjp)
defvjp(std, _std_vjp)


@primitive
def log_softmax(x: Any, axis: int = -1) -> Any:
    """log(softmax(x)) along `axis`, computed stably as x - max - log(sum(exp(x - max)))."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


defvjp(
    log_softmax, lambda g, ans, x, axis=-1: sub(g, mul(exp(ans), sum(g, axis=axis, keepdims=True)))
)


# ----------------------------------------------------------------------------- shape ops


@primitive
def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """x broadcast to `shape` (a read-only view)."""
    a = np.asarray(x)
    if a.size == 1 and a.ndim <= len(shape) and a.flags.c_contiguous:
        # a hot path (the cotangent of a full reduction): the all-zero-strides view that
        # np.broadcast_to makes, without its nditer setup
        view = np.ndarray(shape, a.dtype, a, 0, (0,) * len(shape))
        view.flags.writeable = False
        return view
    return np.broadcast_to(x, shape)


defvjp(broadcast_to, lambda g, ans, x, shape: unbroadcast(g, shape_of(x)))


@primitive
def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """x viewed with a new shape (same number of elements)."""
    if type(x) is np.ndarray:  # the method skips numpy's function dispatch (a hot path)
        return x.reshape(shape)
    return np.reshape(x, shape)


defvjp(reshape, lambda g, ans, x, shape: reshape(g, shape_of(x)))


@primitive
def squeeze(x: Any, axis: int | tuple[int, ...]) -> Any:
    """Remove the given length-1 axes; the axis is required, so a mistake raises."""
    return np.squeeze(x, axis=axis)


defvjp(squeeze, lambda g, ans, x, axis: reshape(g, shape_of(x)))


@primitive
def expand_dims(x: Any, axis: int) -> Any:
    """Insert a length-1 axis at `axis`."""
    return np.expand_dims(x, axis)


defvjp(expand_dims, lambda g, ans, x, axis: reshape(g, shape_of(x)))


@primitive
def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Permute axes (reverse them when `axes` is None)."""
    if axes is None and type(x) is np.ndarray:  # a hot path
        return x.T
    return np.transpose(x, axes)


def _transpose_vjp(g: Any, ans: Any, x: Any, axes: Any = None) -> Any:
    if axes is None:
        return transpose(g)
    return transpose(g, tuple(int(i) for i in np.argsort([a % np.ndim(x) for a in axes])))


defvjp(transpose, _transpose_vjp)


# ----------------------------------------------------------------------------- Box operators


def _install_operators() -> None:
    ops = {
        "__add__": lambda a, b: add(a, b),
        "__radd__": lambda a, b: add(b, a),
        "__sub__": lambda a, b: sub(a, b),
        "__rsub__": lambda a, b: sub(b, a),
        "__mul__": lambda a, b: mul(a, b),
        "__rmul__": lambda a, b: mul(b, a),
        "__truediv__": lambda a, b: div(a, b),
        "__rtruediv__": lambda a, b: div(b, a),
        "__matmul__": lambda a, b: matmul(a, b),
        "__rmatmul__": lambda a, b: matmul(b, a),
        "__neg__": lambda a: neg(a),
        "__pos__": lambda a: a,
        "__pow__": _pow,
        "__rpow__": _rpow,
        "__abs__": lambda a: abs(a),
        "relu": lambda a: relu(a),
        "sum": lambda a, axis=None, keepdims=False: sum(a, axis=axis, keepdims=keepdims),
        "mean": lambda a, axis=None, keepdims=False: mean(a, axis=axis, keepdims=keepdims),
        "max": lambda a, axis=None, keepdims=False: max(a, axis=axis, keepdims=keepdims),
        "min": lambda a, axis=None, keepdims=False: min(a, axis=axis, keepdims=keepdims),
        "var": lambda a, axis=None, ddof=0, keepdims=False: var(a, axis, ddof, keepdims),
        "std": lambda a, axis=None, ddof=0, keepdims=False: std(a, axis, ddof, keepdims),
        "reshape": lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 else shape),
        "squeeze": lambda a, axis: squeeze(a, axis),
        "T": property(lambda a: transpose(a)),
    }
    for name, fn in ops.items():
        setattr(Box, name, fn)


def _pow(a: Any, p: Any) -> Any:
    """Box ** p for a constant real p (`square` for 2); TypeError for a traced exponent."""
    q = _exponent(p)
    return square(a) if q == 2 else power(a, q)


def _rpow(a: Any, c: Any) -> Any:
    """c ** Box for a constant base c > 0 (a number or an array), as exp(Box * log(c));
    ConfigError for a base that is not positive."""
    base = np.asarray(c)
    if base.dtype.kind not in "iuf" or not np.all(base > 0):
        raise ConfigError(f"c ** Box: the base must be positive, got {c!r}")
    # (the log of a Python number stays a Python number, which does not promote float32)
    return exp(mul(a, math.log(c) if type(c) in (int, float) else np.log(base)))


_install_operators()
