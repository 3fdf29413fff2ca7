"""Every op in the op set: its VJP against float64 central differences, with broadcasting.

The op table below is the single list of ops; a test is generated for every
entry and every shape pair, so an op added to `fcgrad.ops.__all__` without a row
here fails `test_every_op_is_in_the_table`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad import ops
from fcgrad.autodiff import grad, vjp

SHAPES = [(), (4,), (3, 4), (1, 4), (3, 1)]
PAIRS = [(a, b) for a in SHAPES for b in SHAPES if np.broadcast_shapes(a, b) is not None]


def positive(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.5, 2.0, size=shape)


def anything(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape)


def away_from_zero(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


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


def test_every_op_is_in_the_table() -> None:
    ops_tested = {name for name in OP_TABLE if name in ops.__all__}
    assert set(ops.__all__) - {"unbroadcast", "positive"} == ops_tested


def test_positive_is_relus_derivative_and_carries_no_gradient() -> None:
    x = np.array([-1.5, 0.0, 2.0], np.float32)
    mask = ops.positive(x)
    assert mask.dtype == np.float32 and mask.tolist() == [0.0, 0.0, 1.0]
    # the mask is a constant of the tape: d/dx sum(positive(x) * x) = positive(x)
    g = grad(lambda x: ops.sum(ops.mul(ops.positive(x), x)))(x.astype(np.float64))
    assert g.tolist() == [0.0, 0.0, 1.0]
    # and nothing flows back through it alone
    assert grad(lambda x: ops.sum(ops.positive(x)))(x.astype(np.float64)).tolist() == [0.0] * 3


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


@pytest.mark.parametrize(("name", "shapes"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_vjp_matches_central_differences(name: str, shapes: tuple[tuple[int, ...], ...]) -> None:
    fn, gens, _ = OP_TABLE[name]
    rng = np.random.default_rng(abs(hash((name, shapes))) % 2**32)
    args = [np.asarray(gen(shape, rng), dtype=np.float64) for gen, shape in zip(gens, shapes)]
    out, pullback = vjp(fn, *args)
    v = rng.standard_normal(np.shape(out))
    analytic = pullback(v)
    for i, (a, n) in enumerate(zip(analytic, numeric_vjp(fn, args, v))):
        assert np.shape(a) == args[i].shape, f"{name}: argument {i} gradient shape"
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8, err_msg=f"{name} argument {i}")


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(
        sorted(n for n, (_, gens, _) in OP_TABLE.items() if len(gens) == 2 and n != "matmul")
    ),
    pair=st.sampled_from(PAIRS),
    seed=st.integers(0, 2**31),
)
def test_binary_ops_property(name: str, pair: tuple[tuple[int, ...], ...], seed: int) -> None:
    fn, gens, _ = OP_TABLE[name]
    rng = np.random.default_rng(seed)
    args = [np.asarray(gen(s, rng), dtype=np.float64) for gen, s in zip(gens, pair)]
    if name == "maximum":  # keep ties out: a tie is a kink, not a smooth point
        args[1] = np.where(np.abs(args[0] - args[1]) < 1e-3, args[1] + 0.5, args[1])
    out, pullback = vjp(fn, *args)
    v = rng.standard_normal(np.shape(out))
    for a, n in zip(pullback(v), numeric_vjp(fn, args, v)):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)


def test_unbroadcast_hand_computed() -> None:
    g = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(ops.unbroadcast(g, (4,)), [12, 15, 18, 21])
    np.testing.assert_array_equal(ops.unbroadcast(g, (3, 1)), [[6], [22], [38]])
    np.testing.assert_array_equal(ops.unbroadcast(g, (1, 4)), [[12, 15, 18, 21]])
    assert ops.unbroadcast(g, ()) == 66
    assert ops.unbroadcast(g, (3, 4)) is g


def test_unbroadcast_keeps_dtype() -> None:
    assert ops.unbroadcast(np.ones((5, 3), np.float32), (3,)).dtype == np.float32


def test_relu_derivative_at_zero_is_zero() -> None:
    _, pullback = vjp(ops.relu, np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(pullback(np.ones(3))[0], [0.0, 0.0, 1.0])


def test_maximum_splits_a_tie() -> None:
    _, pullback = vjp(ops.maximum, np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    gx, gy = pullback(np.ones(2))
    np.testing.assert_array_equal(gx, [0.5, 0.0])
    np.testing.assert_array_equal(gy, [0.5, 1.0])


def test_log_softmax_is_stable_for_large_logits() -> None:
    out = ops.log_softmax(np.array([[1000.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.0, -1000.0]])


def test_ops_keep_float32() -> None:
    x = np.ones((3, 4), np.float32)
    _, pullback = vjp(lambda x: ops.mean(ops.log_softmax(ops.square(x) / 2.0)), x)
    assert pullback(np.float32(1.0))[0].dtype == np.float32


@pytest.mark.parametrize("x", [0.7, np.float64(0.7), np.array(0.7), np.array(0.7, np.float32)])
def test_scalar_kinds_get_their_own_kind_back(x: Any) -> None:
    from fcgrad.autodiff import grad

    for fn in (ops.relu, ops.sin, ops.exp, lambda v: ops.maximum(v, 0.2)):
        g = grad(fn)(x)
        assert type(g) is type(x) and np.result_type(g) == np.result_type(x)


def test_float32_input_keeps_float32_gradient_past_float64_constants() -> None:
    from fcgrad.autodiff import grad

    def f(x: Any) -> Any:
        return ops.sum(np.float64(2.5) * x + np.array([1.0, 2.0, 3.0]))

    g = grad(f)(np.ones(3, np.float32))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [2.5, 2.5, 2.5])


def test_matmul_beyond_two_dimensions_is_refused() -> None:
    from fcgrad.errors import ShapeError

    with pytest.raises(ShapeError, match="matmul"):
        ops.matmul(np.ones((2, 3, 4)), np.ones((4, 2)))


def test_a_numpy_function_on_a_traced_value_raises() -> None:
    with pytest.raises(TypeError, match=r"fcgrad\.ops"):
        vjp(lambda x: np.where(np.ones(3, bool), x, 0.0), np.ones(3))
    with pytest.raises(TypeError, match=r"fcgrad\.ops"):
        vjp(lambda x: np.stack([x, x]), np.ones(3))


def test_third_derivative_through_maximum_and_relu() -> None:
    from fcgrad.autodiff import grad

    # d^3/dx^3 x^3 = 6 on the branch where x^3 > 0
    assert grad(grad(grad(lambda x: ops.maximum(x * x * x, 0.0))))(2.0) == pytest.approx(6.0)
    assert grad(grad(grad(lambda x: ops.relu(x * x * x))))(2.0) == pytest.approx(6.0)


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**31))
def test_check_grads_passes_on_every_op(case: tuple[str, Any], seed: int) -> None:
    from fcgrad.check import check_grads

    name, shapes = case
    fn, gens, _ = OP_TABLE[name]
    rng = np.random.default_rng(seed)
    args = [np.asarray(gen(shape, rng), dtype=np.float64) for gen, shape in zip(gens, shapes)]
    if name == "maximum":  # a tie is a kink: tested in test_check.py
        args[1] = np.where(np.abs(args[0] - args[1]) < 1e-3, args[1] + 0.5, args[1])
    v = rng.standard_normal(np.shape(fn(*args)))
    report = check_grads(lambda *a: ops.sum(ops.mul(fn(*a), v)), args, seed=seed)
    assert report.ok, (name, shapes, report.problems())
