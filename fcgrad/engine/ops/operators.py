"""`Box`'s operators and methods (`+ - * / @ **`, `abs`, `.sum()`, `.T`, ...), written with the
ops; `fcgrad.engine.ops` attaches them when it is imported."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import Box
from fcgrad.engine.ops.broadcasting import reshape, sum
from fcgrad.engine.ops.elementwise import (
    _exponent,
    abs,
    add,
    div,
    exp,
    mul,
    neg,
    power,
    relu,
    square,
    sub,
)
from fcgrad.engine.ops.linalg_shape import matmul, squeeze, transpose
from fcgrad.engine.ops.reductions import max, mean, min, std, var
from fcgrad.errors import ConfigError


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
