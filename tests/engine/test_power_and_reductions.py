"""The ops of issue #9 (power, sqrt, abs, max, min, var, std): derivatives, ties, dtypes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.engine import ops
from fcgrad.engine.autodiff import custom_vjp, grad, unbox, value_and_grad, vjp
from fcgrad.engine.replay import Program, cached_vjp
from fcgrad.errors import ConfigError, ShapeError
from tests.engine.op_table import numeric_vjp


def test_micrograd_sanity_check() -> None:
    """micrograd's own engine test (Karpathy, micrograd, test/test_engine.py,
    test_sanity_check), written with fcgrad Boxes as it is written with micrograd Values;
    micrograd checks these numbers against PyTorch."""

    def f(x: Any) -> Any:
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        y = h + q + q * x
        return y

    y, dx = value_and_grad(f)(-4.0)
    assert y == -20.0
    assert dx == 46.0


def test_micrograd_more_ops() -> None:
    """micrograd's own engine test (Karpathy, micrograd, test/test_engine.py,
    test_more_ops), as written there (`**`, `relu()`, `+=`, constants on either side)."""

    def f(a: Any, b: Any) -> Any:
        c = a + b
        d = a * b + b**3
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g += 10.0 / f
        return g

    g, (da, db) = value_and_grad(f, argnums=(0, 1))(-4.0, 2.0)
    assert g == pytest.approx(24.70408163265306, rel=1e-12)
    assert da == pytest.approx(138.83381924198252, rel=1e-12)
    assert db == pytest.approx(645.5772594752186, rel=1e-12)


@pytest.mark.parametrize("p", [3, 0.5, -1, 0, 1, 2, -2.5, np.float64(1.5), np.int64(4)])
def test_power_matches_central_differences(p: Any) -> None:
    x = np.array([[0.5, 1.3, 2.0], [0.7, 1.0, 3.1]])
    if float(p).is_integer():
        x[1] *= -1  # an integer power is defined for negative x too
    v = np.random.default_rng(3).standard_normal(x.shape)
    for fn in (lambda x: ops.power(x, p), lambda x: x**p):
        out, pullback = vjp(fn, x)
        np.testing.assert_allclose(out, np.power(x, p), rtol=1e-15)
        (got,) = pullback(v)
        (want,) = numeric_vjp(lambda x: np.power(x, p), [x], v)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_power_zero_and_one_have_exact_gradients() -> None:
    x = np.array([-2.0, 0.0, 3.0])
    v = np.array([1.5, np.inf, -2.0])
    assert vjp(lambda x: ops.power(x, 0), x)[1](v)[0].tolist() == [0.0, 0.0, 0.0]
    assert vjp(lambda x: ops.power(x, 1), x)[1](v)[0].tolist() == v.tolist()


def test_power_refuses_an_exponent_that_is_not_a_constant_number() -> None:
    with pytest.raises(TypeError, match="constant real number"):
        grad(lambda x: x**x)(2.0)
    for p in (np.array([1.0, 2.0]), True, 1j, "2"):
        with pytest.raises(TypeError, match="constant real number"):
            ops.power(np.ones(2), p)
    with pytest.raises(TypeError, match="power: argument 1 is not differentiable"):
        grad(lambda p: ops.power(2.0, p))(3.0)


@pytest.mark.parametrize(
    ("p", "x", "want"),  # d^2/dx^2 x^p = p (p - 1) x^(p - 2)
    [
        (3, 2.0, 12.0),
        (0.5, 4.0, -1 / 32),
        (-1, 2.0, 0.25),
        (2, 3.0, 2.0),
        (1, 2.0, 0.0),
        (0, 2.0, 0.0),
    ],
)
def test_second_derivative_of_power(p: Any, x: float, want: float) -> None:
    assert grad(grad(lambda x: ops.power(x, p)))(x) == pytest.approx(want, rel=1e-14)
    assert grad(grad(lambda x: x**p))(x) == pytest.approx(want, rel=1e-14)


def test_third_derivative_of_power_and_second_of_sqrt() -> None:
    assert grad(grad(grad(lambda x: x**3)))(2.0) == pytest.approx(6.0)
    assert grad(grad(ops.sqrt))(4.0) == pytest.approx(-1 / 32, rel=1e-14)  # -x^(-3/2) / 4


def test_a_constant_to_a_traced_power() -> None:
    x = np.array([-1.0, 0.0, 2.5])
    np.testing.assert_allclose(grad(lambda x: ops.sum(2**x))(x), np.log(2) * 2**x, rtol=1e-15)
    # an array base: Box.__rpow__ called as numpy's deferral to it calls it
    base = np.array([0.5, 3.0, 10.0])
    got = grad(lambda x: ops.sum(x.__rpow__(base)))(x)
    np.testing.assert_allclose(got, np.log(base) * base**x)
    for bad in (0.0, -2, np.array([1.0, -1.0])):
        with pytest.raises(ConfigError, match="base must be positive"):
            grad(lambda x, bad=bad: ops.sum(x.__rpow__(bad)))(x)


def test_abs_at_zero_has_gradient_zero_and_sign_carries_none() -> None:
    x = np.array([-2.0, 0.0, 3.0, -0.0])
    assert grad(lambda x: ops.sum(ops.abs(x)))(x).tolist() == [-1.0, 0.0, 1.0, 0.0]
    assert grad(lambda x: ops.sum(abs(x)))(x).tolist() == [-1.0, 0.0, 1.0, 0.0]  # Box.__abs__
    s = ops.sign(x.astype(np.float32))
    assert s.dtype == np.float32 and s.tolist() == [-1.0, 0.0, 1.0, 0.0]
    assert grad(lambda x: ops.sum(ops.sign(x)))(x).tolist() == [0.0] * 4


def test_max_and_min_split_a_tie_evenly() -> None:
    def g(f: Any, x: Any, **kw: Any) -> np.ndarray:
        return grad(lambda x: ops.sum(f(x, **kw)))(np.asarray(x, dtype=np.float64))

    assert g(ops.max, [3.0, 3.0, 1.0]).tolist() == [0.5, 0.5, 0.0]
    assert g(ops.min, [1.0, 3.0, 1.0]).tolist() == [0.5, 0.0, 0.5]
    thirds = g(ops.max, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(thirds, [1 / 3] * 3, rtol=1e-15)
    assert thirds.sum() == 1.0  # moving all three by t moves the max by t
    np.testing.assert_allclose(g(ops.min, [[5.0, 0.0], [0.0, 0.0]]), [[0, 1 / 3], [1 / 3, 1 / 3]])
    x = [[3.0, 3.0, 1.0], [0.0, 5.0, 5.0]]
    per_row = [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    assert g(ops.max, x, axis=1).tolist() == per_row
    assert g(ops.max, x, axis=-1, keepdims=True).tolist() == per_row
    assert g(ops.max, x, axis=(0, -1)).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    assert g(ops.min, x, axis=0).tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    assert g(ops.max, [1.0, np.nan, 2.0]).tolist()[1] == 1.0  # a NaN max: the NaN's


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.integers(-2, 2), min_size=12, max_size=12),  # small integers: many ties
    axis=st.sampled_from([None, 0, 1, -1, (0, 2), (-1, 0, 1)]),
    keepdims=st.booleans(),
    smallest=st.booleans(),
)
def test_tie_shares_are_even_and_sum_to_one(
    x: list[int], axis: Any, keepdims: bool, smallest: bool
) -> None:
    a = np.array(x, dtype=np.float64).reshape(2, 3, 2)
    op = ops.min if smallest else ops.max
    share = grad(lambda a: ops.sum(op(a, axis=axis, keepdims=keepdims)))(a)
    extreme = (np.min if smallest else np.max)(a, axis=axis, keepdims=True)
    tied = a == extreme
    assert np.all(share[~tied] == 0)
    counts = np.broadcast_to(np.sum(tied, axis=axis, keepdims=True), a.shape)
    np.testing.assert_allclose(share[tied], 1 / counts[tied], rtol=1e-15)
    np.testing.assert_allclose(np.sum(share, axis=axis), 1.0, rtol=1e-15)


def test_std_of_a_constant_row_has_gradient_exactly_zero() -> None:
    # np.mean([0.1] * 3) is not 0.1 and np.std of that row is 1.4e-17, not 0: a guard on
    # std == 0 alone would give each element a gradient of -1/3
    x = np.array([[0.1, 0.1, 0.1], [1.0, 2.0, 4.0], [2.0, 2.0, 2.0]])
    assert np.std(x[0]) != 0
    for ddof in (0, 1):
        g = grad(lambda x, ddof=ddof: ops.sum(ops.std(x, axis=1, ddof=ddof)))(x)
        assert g[0].tolist() == [0.0] * 3 and g[2].tolist() == [0.0] * 3
        assert np.isfinite(g).all()
        (want,) = numeric_vjp(lambda r, ddof=ddof: np.std(r, ddof=ddof), [x[1]], np.ones(()))
        np.testing.assert_allclose(g[1], want, rtol=1e-6)
    for row in (np.full(4, 1 / 3, np.float32), np.full((2, 2), -7.3), np.array(5.0)):
        g = grad(lambda r: ops.std(r))(row)
        assert np.all(g == 0) and g.dtype == row.dtype
    # var's gradient there is 0 as well, and exactly: x - mean is computed exactly 0
    assert grad(lambda r: ops.var(r, ddof=1))(x[0]).tolist() == [0.0] * 3


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, -3)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_var_and_std_with_ddof_match_numpy_and_central_differences(
    op: str, axis: Any, keepdims: bool
) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 2))
    mine, numpys = getattr(ops, op), getattr(np, op)
    kw = {"axis": axis, "ddof": 1, "keepdims": keepdims}
    out, pullback = vjp(lambda x: mine(x, **kw), x)
    np.testing.assert_array_equal(out, numpys(x, **kw))
    v = rng.standard_normal(np.shape(out))
    (want,) = numeric_vjp(lambda x: numpys(x, **kw), [x], v)
    np.testing.assert_allclose(pullback(v)[0], want, rtol=1e-6, atol=1e-8)


def test_ddof_that_leaves_no_degrees_of_freedom_is_an_error() -> None:
    message = "std: ddof=3 leaves n - ddof = 0 (n = 3 elements per reduction); it must be positive"
    with pytest.raises(ShapeError, match=re.escape(message)):
        ops.std(np.ones(3), ddof=3)
    with pytest.raises(ShapeError, match=re.escape("var: ddof=3 leaves n - ddof = -1 (n = 2 ")):
        ops.var(np.ones((2, 5)), axis=0, ddof=3)
    with pytest.raises(ShapeError, match=re.escape("std: ddof=6 leaves n - ddof = 0 (n = 6 ")):
        grad(lambda x: ops.std(x, axis=(0, -1), ddof=6))(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"var: ddof=1 .* \(n = 1 "):
        ops.var(np.float64(2.0), ddof=1)
    with pytest.raises(ShapeError, match="out of range or repeated"):
        ops.var(np.ones((2, 3)), axis=2)
    with pytest.raises(ShapeError, match="out of range or repeated"):
        ops.std(np.ones((2, 3)), axis=(0, -2))


def test_second_derivatives_of_std_and_var() -> None:
    # x = [0, 1, 2], ddof = 1: mean 1, std 1, n - ddof = 2; the Hessian of std is
    # (delta_ij - 1/n) / ((n - ddof) std) - (x_i - m)(x_j - m) / ((n - ddof)^2 std^3),
    # whose first column is [1/12, -1/6, 1/12]; var's is 2 (delta_ij - 1/n) / (n - ddof)
    x, e0 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.0, 0.0])
    for op, want in ((ops.std, [1 / 12, -1 / 6, 1 / 12]), (ops.var, [2 / 3, -1 / 3, -1 / 3])):
        first = grad(lambda y, op=op: op(y, ddof=1))
        column = grad(lambda x, first=first: ops.sum(ops.mul(first(x), e0)))(x)
        np.testing.assert_allclose(column, want, rtol=1e-14, atol=1e-16)


def test_second_derivative_through_a_max() -> None:
    # max(x^3, (x/2)^3) = x^3 for x > 0: d^2/dx^2 = 6x
    def f(x: Any) -> Any:
        return ops.max(ops.power(ops.mul(x, np.array([1.0, 0.5])), 3))

    assert grad(grad(f))(2.0) == pytest.approx(12.0, rel=1e-14)


def test_check_grads_sees_valid_subgradients_at_the_kinks() -> None:
    from fcgrad.checking.check_grads import check_grads

    cases = [
        (ops.max, [3.0, 3.0, 1.0], 2),
        (ops.min, [1.0, 1.0, 1.0], 3),
        (ops.abs, [0.0, 1.0], 1),
        (ops.std, [0.1, 0.1, 0.1], 3),
        (lambda x: ops.std(x, ddof=1), [2.0, 2.0], 2),
    ]
    for fn, x, kinks in cases:
        report = check_grads(lambda x, fn=fn: ops.sum(fn(x)), [np.array(x)])
        assert report.ok, report.problems()
        assert report.leaves[0].n_kinks == kinks


def test_box_methods() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))

    def f(z: Any) -> Any:
        return (
            z.relu().sum()
            + z.max(axis=0).sum()
            + z.min()
            + z.var(ddof=1)
            + z.std(axis=-1, keepdims=True).sum()
        )

    def g(z: Any) -> Any:
        return (
            ops.sum(ops.relu(z))
            + ops.sum(ops.max(z, axis=0))
            + ops.min(z)
            + ops.var(z, ddof=1)
            + ops.sum(ops.std(z, axis=-1, keepdims=True))
        )

    (vf, gf), (vg, gg) = value_and_grad(f)(x), value_and_grad(g)(x)
    assert vf == vg
    np.testing.assert_array_equal(gf, gg)


NEW_OPS: dict[str, Callable[[Any], Any]] = {
    "power 3": lambda x: ops.power(x, 3),
    "power np.float64(0.5)": lambda x: ops.power(x, np.float64(0.5)),
    "power 0": lambda x: ops.power(x, 0),
    "** -1": lambda x: x**-1,
    "2 **": lambda x: 2.0**x,
    "sqrt": ops.sqrt,
    "abs": ops.abs,
    "max axis 1": lambda x: ops.max(x, axis=1),
    "min": ops.min,
    "var ddof 1": lambda x: ops.var(x, axis=0, ddof=1),
    "std": ops.std,
    "std constant rows": lambda x: ops.std(ops.mul(x, 0.0), axis=1, keepdims=True),
}


@pytest.mark.parametrize("name", sorted(NEW_OPS))
def test_new_ops_keep_float32(name: str) -> None:
    fn = NEW_OPS[name]
    x = np.array([[0.5, 1.5, 2.0], [1.0, 1.0, 3.0]], np.float32)
    seen = []  # the dtype of the cotangent that reaches x, before leaf_grad casts it

    def look(g: Any, ans: Any, x: Any) -> Any:
        seen.append(np.result_type(unbox(g)))
        return g

    probe = custom_vjp(lambda x: x, look)
    out, pullback = vjp(lambda x: fn(probe(x)), x)
    assert np.result_type(out) == np.float32
    pullback(np.ones_like(out))
    assert seen == [np.float32]


def test_a_replayed_tape_of_the_new_ops_is_bit_identical_to_a_fresh_vjp() -> None:
    def f(x: Any, y: Any) -> Any:
        return (
            ops.sum(ops.power(x, 3))
            + ops.sum(x**0.5 + x**-1 + ops.power(x, 0) + 2.0**y)
            + ops.sum(ops.sqrt(x))
            + ops.sum(ops.mul(ops.abs(y), x))
            + ops.sum(ops.max(y, axis=1))
            + ops.sum(ops.min(y, axis=(0, -1), keepdims=True))
            + ops.sum(ops.mul(ops.max(y, axis=0, keepdims=True), y))
            + ops.sum(ops.var(y, axis=0, ddof=1))
            + ops.sum(ops.std(y, axis=-1))
            + ops.std(x, ddof=1)
        )

    cached = cached_vjp(f, (0, 1))
    rng = np.random.default_rng(11)
    ties = np.array([[1.0, 1.0, 0.0, -1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 2.0, -1.0, 2.0]])
    for y in (rng.standard_normal((3, 4)), ties, rng.integers(-1, 2, (3, 4)).astype(float)):
        x = rng.uniform(0.5, 2.0, (3, 4))  # the first call records, the others replay
        value, pullback = cached(x, y)
        want_value, want_pullback = vjp(f, x, y)
        assert type(value) is type(want_value) and value == want_value
        for got, want in zip(pullback(1.5), want_pullback(1.5)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    (program,) = cached.programs.values()  # type: ignore[attr-defined]
    assert isinstance(program, Program)


def test_log_softmax_of_a_0d_array_is_0_as_before() -> None:
    """The fast path is for arrays with an axis; a 0-d input takes numpy's own path."""
    from fcgrad.engine import ops

    for x in (np.array(0.7), np.array(-3.0, np.float32)):
        out = ops.log_softmax(x)
        assert np.shape(out) == () and float(out) == 0.0 and np.result_type(out) == x.dtype
