"""The tape's public API: the lesson's fixtures, accumulation, pytrees, errors, higher order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fcgrad.engine import ops
from fcgrad.engine.autodiff import grad, hold, value_and_grad, vjp
from fcgrad.errors import ShapeError
from fcgrad.nn.params import Linear, Params


def test_gradient_of_mean_square_is_the_lessons_values() -> None:
    x = np.array([1, 2, 3, 4], dtype=np.float32)
    g = grad(lambda x: ops.mean(ops.square(x)))(x)
    np.testing.assert_array_equal(g, [0.5, 1.0, 1.5, 2.0])
    assert g.dtype == np.float32


def _sin_cos(x: object) -> object:
    return ops.sin(x * x) + ops.cos(x * x)


def test_sin_cos_fixture_float32() -> None:
    g = grad(_sin_cos)(np.float32(3.14))
    assert g.dtype == np.float32
    assert g == pytest.approx(-3.0501623, abs=2e-6)


def test_sin_cos_fixture_float64() -> None:
    g = grad(_sin_cos)(3.14)
    assert isinstance(g, float)
    assert g == pytest.approx(-3.05017097, abs=1e-8)


@pytest.mark.parametrize("x", [i / 10 for i in range(10)])
def test_gradient_of_x_times_x_is_two_x(x: float) -> None:
    assert grad(lambda v: v * v)(x) == pytest.approx(2 * x, abs=1e-15)


def test_value_used_three_times_accumulates() -> None:
    # f = x*x + x, so f' = 2x + 1: both uses of x in the product and the sum must add up.
    assert grad(lambda x: x * x + x)(3.0) == pytest.approx(7.0)


def test_value_and_grad_returns_both() -> None:
    value, g = value_and_grad(lambda x: ops.sum(ops.exp(x)))(np.zeros(3))
    assert value == pytest.approx(3.0)
    np.testing.assert_allclose(g, np.ones(3))


def test_argnums_tuple() -> None:
    gx, gy = grad(lambda x, y: x * y * y, argnums=(0, 1))(2.0, 3.0)
    assert (gx, gy) == (pytest.approx(9.0), pytest.approx(12.0))


def test_gradient_of_a_dataclass_is_the_same_dataclass() -> None:
    params = Params((Linear(np.ones((2, 3), np.float32), np.zeros(3, np.float32)),))
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    g = grad(lambda p: ops.sum(ops.matmul(x, p.layers[0].w) + p.layers[0].b))(params)
    assert isinstance(g, Params) and isinstance(g.layers[0], Linear)
    np.testing.assert_array_equal(g.layers[0].w, [[1, 1, 1], [2, 2, 2]])  # d/dw = x^T 1
    np.testing.assert_array_equal(g.layers[0].b, [1, 1, 1])
    assert g.layers[0].w.dtype == np.float32


def test_dict_and_tuple_pytrees() -> None:
    tree = {"a": (1.0, np.array([2.0, 3.0])), "b": 4.0}
    g = grad(lambda t: t["a"][0] * t["b"] + ops.sum(t["a"][1]))(tree)
    assert g["a"][0] == pytest.approx(4.0) and g["b"] == pytest.approx(1.0)
    np.testing.assert_array_equal(g["a"][1], [1.0, 1.0])


def test_unused_input_gets_zero_gradient() -> None:
    gx, gy = grad(lambda x, y: x * 2.0, argnums=(0, 1))(1.0, np.ones(3))
    assert gx == 2.0
    np.testing.assert_array_equal(gy, np.zeros(3))


def test_vjp_of_a_vector_function() -> None:
    x = np.array([1.0, 2.0, 3.0])
    value, pullback = vjp(lambda x: ops.square(x), x)
    np.testing.assert_array_equal(value, [1, 4, 9])
    (g,) = pullback(np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(g, [2.0, 0.0, 12.0])  # v * 2x
    (g2,) = pullback(np.array([0.0, 1.0, 0.0]))  # a pullback can be called again
    np.testing.assert_array_equal(g2, [0.0, 4.0, 0.0])


def test_pullback_rejects_a_cotangent_of_the_wrong_shape() -> None:
    _, pullback = vjp(lambda x: ops.square(x), np.ones(3))
    with pytest.raises(ShapeError, match="cotangent shape"):
        pullback(np.ones(4))


def test_grad_of_a_non_scalar_function_raises() -> None:
    with pytest.raises(ShapeError, match="scalar"):
        grad(lambda x: ops.square(x))(np.ones(3))


def test_cannot_differentiate_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        grad(lambda s: 1.0)("text")


def test_traced_value_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match="truth value"):
        grad(lambda x: x * 2.0 if x else x)(1.0)


def test_numpy_array_on_the_left_defers_to_the_box() -> None:
    w = np.array([1.0, 2.0])
    g = grad(lambda x: ops.sum(w * x + w))(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(g, w)


def test_second_derivatives() -> None:
    assert grad(grad(ops.sin))(1.0) == pytest.approx(-np.sin(1.0))
    assert grad(grad(lambda x: x * x * x))(2.0) == pytest.approx(12.0)
    assert grad(grad(ops.exp))(0.5) == pytest.approx(np.exp(0.5))


def test_pytree_rebuild_of_frozen_dataclass() -> None:
    @dataclasses.dataclass(frozen=True)
    class P:
        a: float
        b: np.ndarray

    g = grad(lambda p: p.a * ops.sum(p.b))(P(2.0, np.ones(2)))
    assert isinstance(g, P) and g.a == pytest.approx(2.0)
    np.testing.assert_array_equal(g.b, [2.0, 2.0])


def test_namedtuple_and_mixed_key_dict_pytrees() -> None:
    import collections

    pair = collections.namedtuple("pair", "a b")
    assert grad(lambda p: p.a * p.b)(pair(2.0, 3.0)) == pair(3.0, 2.0)
    assert grad(lambda d: d[1] * d["a"])({1: 2.0, "a": 3.0}) == {1: 3.0, "a": 2.0}


def test_zero_d_array_gets_a_zero_d_array_gradient() -> None:
    g = grad(lambda x: x * x)(np.array(3.0, np.float32))
    assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == np.float32 and g == 6.0


def test_pullback_into_writes_the_gradient_into_the_given_array() -> None:
    x, w = np.arange(6.0).reshape(2, 3), np.ones((3, 4))
    _, pullback = vjp(lambda x: ops.sum(ops.matmul(x, w)), x)
    buf = np.full_like(x, np.nan)
    (g,) = pullback(1.0, into={0: buf})
    assert g is buf
    np.testing.assert_array_equal(buf, np.full((2, 3), 4.0))  # g @ w.T with g = ones(2, 4)


def test_pullback_into_for_an_argument_used_twice_still_sums_both_uses() -> None:
    x = np.ones((2, 3))
    _, pullback = vjp(lambda x: ops.sum(ops.matmul(x, np.ones((3, 1)))) + ops.sum(x * 2.0), x)
    buf = np.empty_like(x)
    (g,) = pullback(1.0, into={0: buf})
    assert g is buf
    np.testing.assert_array_equal(buf, np.full((2, 3), 3.0))


def test_pullback_into_rejects_a_buffer_of_the_wrong_shape() -> None:
    _, pullback = vjp(lambda x: ops.sum(x), np.ones(3))
    with pytest.raises(ShapeError, match="into"):
        pullback(1.0, into={0: np.empty(4)})


def test_a_view_frozen_before_its_base_is_thawed_with_it() -> None:
    import gc

    c, y = np.ones((3, 3)), np.ones((3, 3))
    value, pullback = vjp(lambda y: ops.sum(ops.add(ops.mul(c.T, y), ops.mul(c, y))), y)
    assert not c.flags.writeable
    del value, pullback
    gc.collect()
    assert c.flags.writeable and y.flags.writeable


def test_overlapping_holds_and_tapes_release_an_array_when_the_last_is_gone() -> None:
    import gc

    w = np.ones(3)
    _, first = vjp(lambda w: ops.sum(ops.square(w)), w)
    _, second = vjp(lambda w: ops.sum(ops.exp(w)), w)  # w is read-only already: held too
    del first
    gc.collect()
    with pytest.raises(ValueError, match="read-only"):
        w += 1.0  # `second` still reads it
    held = hold(w, "not an array", 2.0)
    del second
    gc.collect()
    assert not w.flags.writeable
    del held
    assert w.flags.writeable
    fixed = np.ones(2)
    fixed.flags.writeable = False
    held = hold(fixed)
    del held
    assert not fixed.flags.writeable  # read-only before the hold: left so
