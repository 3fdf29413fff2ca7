"""The op set shared by the three strategies: numpy forward code with its VJP beside it.

Every op here is a `Primitive`: on plain numpy arrays it is the numpy function
(so `manual` and `vwc` call these for their forward passes), and on a traced
`Box` it records itself on the tape (so `tape` differentiates through them).
Each op's VJP rule sits right under its forward code, as one `defvjp` row, and
is written with the ops themselves, so rules can be differentiated again.

Broadcasting is undone in one place, `unbroadcast(g, shape)`.

Conventions: a rule `rule(g, ans, *args)` receives the output cotangent `g`
(shape of `ans`) and returns the argument's cotangent (shape of the argument).
ReLU's derivative at exactly 0 is taken to be 0 (the subgradient the lesson's
`relu_grad`, `(x > 0)`, uses); `maximum` splits a tie evenly between its two
arguments, as HIPS autograd does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.autodiff import Box, defvjp, defvjp_into, nondiff_primitive, primitive, shape_of
from fcgrad.errors import ShapeError

__all__ = [
    "add",
    "broadcast_to",
    "cos",
    "div",
    "exp",
    "expand_dims",
    "log",
    "log_softmax",
    "matmul",
    "maximum",
    "mean",
    "mul",
    "neg",
    "positive",
    "relu",
    "reshape",
    "sin",
    "square",
    "squeeze",
    "sub",
    "sum",
    "transpose",
    "unbroadcast",
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
def square(x: Any) -> Any:
    """x ** 2, elementwise."""
    return np.square(x)


defvjp(square, lambda g, ans, x: mul(g, mul(x, 2.0)))


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


def _restore(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Broadcast a reduced cotangent back to `shape`."""
    if not keepdims and axis is not None:
        one = isinstance(axis, (int, np.integer))
        axes = {int(a) % len(shape) for a in ((axis,) if one else axis)}
        g = reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return broadcast_to(g, shape)


defvjp(sum, lambda g, ans, x, axis=None, keepdims=False: _restore(g, shape_of(x), axis, keepdims))


@primitive
def mean(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over `axis` (all axes when None)."""
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize >= 4:
        # what np.mean does for these dtypes (the same sum, then one division), minus its
        # Python-level dispatch: a hot path
        total = np.add.reduce(x, axis=axis, keepdims=keepdims)  # type: ignore[call-overload]
        n = x.size // max(total.size, 1)
        return total / n if type(total) is not np.ndarray else np.divide(total, n, out=total)
    return np.mean(x, axis=axis, keepdims=keepdims)


def _mean_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    n = np.size(x) // max(np.size(ans), 1)
    return _restore(div(g, float(n)), shape_of(x), axis, keepdims)  # divide before broadcasting


defvjp(mean, _mean_vjp)


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
        "sum": lambda a, axis=None, keepdims=False: sum(a, axis=axis, keepdims=keepdims),
        "mean": lambda a, axis=None, keepdims=False: mean(a, axis=axis, keepdims=keepdims),
        "reshape": lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 else shape),
        "squeeze": lambda a, axis: squeeze(a, axis),
        "T": property(lambda a: transpose(a)),
    }
    for name, fn in ops.items():
        setattr(Box, name, fn)


def _pow(a: Any, p: Any) -> Any:
    if isinstance(p, (int, float)) and p == 2:
        return square(a)
    raise TypeError(f"Box ** {p!r}: only ** 2 is in the op set (use square, exp, log)")


_install_operators()
