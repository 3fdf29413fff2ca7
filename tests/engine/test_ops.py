"""Every op in the op set: its VJP against float64 central differences, with broadcasting.

The op table (`tests/engine/op_table.py`) is the single list of ops; a test is generated
for every entry and every shape pair, so an op added to `fcgrad.engine.ops.__all__` without
a row there fails `test_every_op_is_in_the_table`.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.engine import ops
from fcgrad.engine.autodiff import grad, vjp
from tests.engine.op_table import CASES, OP_TABLE, PAIRS, numeric_vjp


def test_every_op_is_in_the_table() -> None:
    ops_tested = {name for name in OP_TABLE if name in ops.__all__}
    assert set(ops.__all__) - {"unbroadcast", "positive", "sign", "leaky_slope"} == ops_tested


def test_positive_is_relus_derivative_and_carries_no_gradient() -> None:
    x = np.array([-1.5, 0.0, 2.0], np.float32)
    mask = ops.positive(x)
    assert mask.dtype == np.float32 and mask.tolist() == [0.0, 0.0, 1.0]
    # the mask is a constant of the tape: d/dx sum(positive(x) * x) = positive(x)
    g = grad(lambda x: ops.sum(ops.mul(ops.positive(x), x)))(x.astype(np.float64))
    assert g.tolist() == [0.0, 0.0, 1.0]
    # and nothing flows back through it alone
    assert grad(lambda x: ops.sum(ops.positive(x)))(x.astype(np.float64)).tolist() == [0.0] * 3


@pytest.mark.parametrize(("name", "shapes"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_vjp_matches_central_differences(name: str, shapes: tuple[tuple[int, ...], ...]) -> None:
    fn, gens, _ = OP_TABLE[name]
    rng = np.random.default_rng(zlib.crc32(f"{name} {shapes}".encode()))  # (not hash: salted)
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
    from fcgrad.engine.autodiff import grad

    for fn in (ops.relu, ops.sin, ops.exp, lambda v: ops.maximum(v, 0.2)):
        g = grad(fn)(x)
        assert type(g) is type(x) and np.result_type(g) == np.result_type(x)


def test_float32_input_keeps_float32_gradient_past_float64_constants() -> None:
    from fcgrad.engine.autodiff import grad

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
    from fcgrad.engine.autodiff import grad

    # d^3/dx^3 x^3 = 6 on the branch where x^3 > 0
    assert grad(grad(grad(lambda x: ops.maximum(x * x * x, 0.0))))(2.0) == pytest.approx(6.0)
    assert grad(grad(grad(lambda x: ops.relu(x * x * x))))(2.0) == pytest.approx(6.0)


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**31))
def test_check_grads_passes_on_every_op(case: tuple[str, Any], seed: int) -> None:
    from fcgrad.checking.check_grads import check_grads

    name, shapes = case
    fn, gens, _ = OP_TABLE[name]
    rng = np.random.default_rng(seed)
    args = [np.asarray(gen(shape, rng), dtype=np.float64) for gen, shape in zip(gens, shapes)]
    if name == "maximum":  # a tie is a kink: tested in test_check.py
        args[1] = np.where(np.abs(args[0] - args[1]) < 1e-3, args[1] + 0.5, args[1])
    v = rng.standard_normal(np.shape(fn(*args)))
    report = check_grads(lambda *a: ops.sum(ops.mul(fn(*a), v)), args, seed=seed)
    assert report.ok, (name, shapes, report.problems())


def test_activations_match_their_textbook_formulas_in_float64() -> None:
    """tanh, sigmoid = 1 / (1 + e^-x) and leaky ReLU (slope 0.01 below 0), hand-checked values."""
    x = np.array([-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0])
    np.testing.assert_allclose(ops.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(ops.tanh(x), np.tanh(x), rtol=0)
    assert ops.leaky_relu(x).tolist() == [-0.3, -0.02, -0.005, 0.0, 0.5, 2.0, 30.0]
    assert ops.sigmoid(0.0) == 0.5
    # the derivatives: s (1 - s) = 1/4 at 0; 1 - tanh^2 = 1 at 0; leaky's is its slope at 0
    assert grad(ops.sigmoid)(0.0) == 0.25
    assert grad(ops.tanh)(0.0) == 1.0
    assert grad(lambda v: ops.sum(ops.leaky_relu(v)))(np.array([-1.0, 0.0, 2.0])).tolist() == [
        0.01,
        0.01,
        1.0,
    ]
    assert grad(lambda v: ops.sum(ops.leaky_relu(v, 0.2)))(np.array([-1.0, 3.0])).tolist() == [
        0.2,
        1.0,
    ]


def test_sigmoid_keeps_float32_and_does_not_overflow() -> None:
    x = np.array([-100.0, -20.0, 0.0, 20.0, 100.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (e^-100 underflows: fine)
        s = ops.sigmoid(x)
        for f in (ops.sigmoid, ops.tanh, ops.leaky_relu):
            assert f(x).dtype == np.float32
            assert grad(lambda v, f=f: ops.sum(f(v)))(x).dtype == np.float32
    np.testing.assert_allclose(s, 1.0 / (1.0 + np.exp(-x.astype(np.float64))), rtol=1e-6, atol=1e-7)
