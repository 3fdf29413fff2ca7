"""The op table shared by the engine tests: every op, its input generators, its shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops

SHAPES = [(), (4,), (3, 4), (1, 4), (3, 1)]
PAIRS = [(a, b) for a in SHAPES for b in SHAPES if np.broadcast_shapes(a, b) is not None]


def positive(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.5, 2.0, size=shape)


def anything(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape)


def away_from_zero(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


def distinct(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Elements at least 0.2 apart: no ties for max and min, no constant rows for std."""
    n = math.prod(shape)
    return ((rng.permutation(n) + rng.uniform(-0.3, 0.3, n)) * 0.5 - n / 4).reshape(shape)


# name -> (function of the inputs, input generators, shapes to try)
UNARY = [(s,) for s in SHAPES]
OP_TABLE: dict[
    str, tuple[Callable[..., Any], tuple[Any, ...], list[tuple[tuple[int, ...], ...]]]
] = {
    "add": (ops.add, (anything, anything), PAIRS),
    "sub": (ops.sub, (anything, anything), PAIRS),
    "mul": (ops.mul, (anything, anything), PAIRS),
    "div": (ops.div, (anything, positive), PAIRS),
    "maximum": (ops.maximum, (anything, anything), PAIRS),
    "neg": (ops.neg, (anything,), UNARY),
    "square": (ops.square, (anything,), UNARY),
    "exp": (ops.exp, (anything,), UNARY),
    "log": (ops.log, (positive,), UNARY),
    "sin": (ops.sin, (anything,), UNARY),
    "cos": (ops.cos, (anything,), UNARY),
    "relu": (ops.relu, (away_from_zero,), UNARY),
    "leaky_relu": (ops.leaky_relu, (away_from_zero,), UNARY),
    "leaky_relu_slope": (lambda x: ops.leaky_relu(x, 0.2), (away_from_zero,), UNARY),
    "tanh": (ops.tanh, (anything,), UNARY),
    "sigmoid": (ops.sigmoid, (anything,), UNARY),
    "power": (lambda x: ops.power(x, 3), (anything,), UNARY),
    "power_half": (lambda x: ops.power(x, 0.5), (positive,), UNARY),
    "power_minus_one": (lambda x: ops.power(x, -1), (positive,), UNARY),
    "power_zero": (lambda x: ops.power(x, 0), (anything,), [((3, 4),), ((),)]),
    "power_one": (lambda x: ops.power(x, 1), (anything,), [((3, 4),), ((),)]),
    "pow_operator": (lambda x: x**3 + x**0.5 + x**-1 + x**2, (positive,), UNARY),
    "rpow_operator": (lambda x: 2.0**x, (anything,), UNARY),
    "sqrt": (ops.sqrt, (positive,), UNARY),
    "abs": (ops.abs, (away_from_zero,), UNARY),
    "matmul": (
        ops.matmul,
        (anything, anything),
        [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,))],
    ),
    "sum": (ops.sum, (anything,), UNARY),
    "sum_axis0": (lambda x: ops.sum(x, axis=0), (anything,), [((3, 4),), ((4,),)]),
    "sum_keepdims": (lambda x: ops.sum(x, axis=1, keepdims=True), (anything,), [((3, 4),)]),
    "mean": (ops.mean, (anything,), UNARY),
    "mean_axis1": (lambda x: ops.mean(x, axis=1), (anything,), [((3, 4),), ((3, 1),)]),
    "mean_neg_axis": (lambda x: ops.mean(x, axis=-2, keepdims=True), (anything,), [((3, 4),)]),
    "max": (ops.max, (distinct,), UNARY),
    "max_axis0": (lambda x: ops.max(x, axis=0), (distinct,), [((3, 4),), ((4,),)]),
    "max_neg_axis_keepdims": (
        lambda x: ops.max(x, axis=-1, keepdims=True),
        (distinct,),
        [((3, 4),), ((2, 3, 4),)],
    ),
    "max_tuple_axes": (lambda x: ops.max(x, axis=(0, 2)), (distinct,), [((2, 3, 4),)]),
    "min": (ops.min, (distinct,), UNARY),
    "min_axis1": (lambda x: ops.min(x, axis=1), (distinct,), [((3, 4),), ((3, 1),)]),
    "min_tuple_keepdims": (
        lambda x: ops.min(x, axis=(-1, 0), keepdims=True),
        (distinct,),
        [((2, 3, 4),)],
    ),
    "var": (ops.var, (anything,), UNARY),
    "var_axis0_ddof1": (lambda x: ops.var(x, axis=0, ddof=1), (anything,), [((3, 4),), ((3, 1),)]),
    "var_neg_axis_keepdims": (
        lambda x: ops.var(x, axis=-1, keepdims=True),
        (anything,),
        [((3, 4),), ((2, 3, 4),)],
    ),
    "var_tuple_axes_ddof1": (
        lambda x: ops.var(x, axis=(0, 2), ddof=1),
        (anything,),
        [((2, 3, 4),)],
    ),
    "std": (ops.std, (distinct,), UNARY),
    "std_axis1_ddof1": (
        lambda x: ops.std(x, axis=1, ddof=1),
        (distinct,),
        [((3, 4),), ((2, 3, 4),)],
    ),
    "std_neg_axis_keepdims": (
        lambda x: ops.std(x, axis=-2, keepdims=True),
        (distinct,),
        [((3, 4),), ((3, 1),)],
    ),
    "std_tuple_axes": (lambda x: ops.std(x, axis=(0, -1)), (distinct,), [((2, 3, 4),)]),
    "log_softmax": (ops.log_softmax, (anything,), [((3, 4),), ((4,),)]),
    "reshape": (lambda x: ops.reshape(x, (2, 6)), (anything,), [((3, 4),), ((12,),)]),
    "squeeze": (lambda x: ops.squeeze(x, -1), (anything,), [((3, 1),)]),
    "expand_dims": (lambda x: ops.expand_dims(x, 0), (anything,), [((3, 4),), ((4,),)]),
    "transpose": (ops.transpose, (anything,), [((3, 4),), ((4,),)]),
    "transpose_axes": (lambda x: ops.transpose(x, (1, 2, 0)), (anything,), [((2, 3, 4),)]),
    "transpose_negative_axes": (
        lambda x: ops.transpose(x, (-1, 0)),
        (anything,),
        [((3, 4),), ((3, 3),)],
    ),
    "broadcast_to": (
        lambda x: ops.broadcast_to(x, (3, 4)),
        (anything,),
        [((4,),), ((3, 1),), ((),)],
    ),
}


def numeric_vjp(
    f: Callable[..., Any], args: list[np.ndarray], v: np.ndarray, h: float = 1e-6
) -> list[np.ndarray]:
    """(J^T v) for each argument, by float64 central differences of <v, f(args)>."""
    grads = []
    for i, a in enumerate(args):
        g = np.zeros_like(a, dtype=np.float64)
        for idx in np.ndindex(a.shape):
            up, down = [x.copy() for x in args], [x.copy() for x in args]
            up[i][idx] += h
            down[i][idx] -= h
            g[idx] = (np.sum(v * f(*up)) - np.sum(v * f(*down))) / (2 * h)
        grads.append(g)
    return grads


CASES = [(name, shapes) for name, (_, _, shape_list) in OP_TABLE.items() for shapes in shape_list]
