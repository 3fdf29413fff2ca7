"""The reductions besides `sum`: `mean`, `max`, `min`, `var`, `std`, and `log_softmax`.

`sum` lives in `broadcasting`, beside `unbroadcast`; these rules are built on both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import defvjp, nondiff_primitive, primitive, shape_of
from fcgrad.engine.ops.broadcasting import _keep, _kept, _restore, sum
from fcgrad.engine.ops.elementwise import _div_where_nonzero, div, exp, mul, sub
from fcgrad.errors import ShapeError


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
    if type(x) is np.ndarray and x.dtype.kind == "f":  # np.max's reduction, minus its dispatch
        return np.maximum.reduce(x, axis=axis, keepdims=keepdims)  # type: ignore[call-overload]
    return np.max(x, axis=axis, keepdims=keepdims)


@primitive
def min(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """The smallest element over `axis`, as np.min; shapes, ties and errors as for `max`."""
    if type(x) is np.ndarray and x.dtype.kind == "f":  # np.min's reduction, minus its dispatch
        return np.minimum.reduce(x, axis=axis, keepdims=keepdims)  # type: ignore[call-overload]
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
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.ndim:
        # a hot path (every cross-entropy step): the ufuncs' own reductions, without
        # np.max's and np.sum's Python-level dispatch, and the last subtraction in place
        shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
        total = np.add.reduce(np.exp(shifted), axis=axis, keepdims=True)
        return np.subtract(shifted, np.log(total, out=total), out=shifted)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


defvjp(
    log_softmax, lambda g, ans, x, axis=-1: sub(g, mul(exp(ans), sum(g, axis=axis, keepdims=True)))
)
