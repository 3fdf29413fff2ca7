"""`unbroadcast`, and the ops it and every reduction's rule are made of: `sum`, `broadcast_to`
and `reshape`.

They form one cycle (unbroadcast is a sum, sum's rule broadcasts, broadcast_to's rule
unbroadcasts), so they live together, below the other modules of the op set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine.autodiff import defvjp, primitive, shape_of


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


# ----------------------------------------------------------------------------- sum


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


# ----------------------------------------------------------------------- broadcast_to, reshape


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
