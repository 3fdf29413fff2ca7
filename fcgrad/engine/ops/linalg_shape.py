"""`matmul`, and the shape ops besides `broadcast_to` and `reshape`: `squeeze`,
`expand_dims` and `transpose`."""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine.autodiff import defvjp, defvjp_into, primitive, shape_of
from fcgrad.engine.ops.broadcasting import reshape
from fcgrad.engine.ops.elementwise import mul
from fcgrad.errors import ShapeError


def _nd(x: Any) -> int:
    """np.ndim, without numpy's dispatch for the common case of an array (a hot path)."""
    return x.ndim if type(x) is np.ndarray else np.ndim(x)


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


# ----------------------------------------------------------------------------- shape ops


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
