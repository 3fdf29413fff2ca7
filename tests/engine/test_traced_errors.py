"""numpy on a traced value: operators run the fcgrad ops, anything else is a TracedValueError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fcgrad.engine import ops
from fcgrad.engine.autodiff import grad, vjp
from fcgrad.errors import FcgradError, TracedValueError


def raised_on_a_traced_value(f: Callable[[Any], Any], x: Any = None) -> TracedValueError:
    """The TracedValueError `f` raises when called on a traced `x` (ones(3) by default)."""
    with pytest.raises(TracedValueError) as info:
        vjp(f, np.ones(3) if x is None else x)
    return info.value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            np.exp,
            "numpy.exp was called on a traced value; use fcgrad.ops.exp (or define a "
            "primitive with fcgrad.primitive and defvjp)",
        ),
        (np.sum, "numpy.sum was called on a traced value; use fcgrad.ops.sum"),
        (np.mean, "numpy.mean was called on a traced value; use fcgrad.ops.mean"),
        (
            lambda x: np.maximum(x, 0.0),
            "numpy.maximum was called on a traced value; use fcgrad.ops.maximum",
        ),
        (
            lambda x: np.where(x, 1.0, 0.0),
            "numpy.where was called on a traced value; "
            "fcgrad.ops has no where: define a primitive with fcgrad.primitive and defvjp",
        ),
        (
            lambda x: np.stack([x, x]),
            "numpy.stack was called on a traced value; fcgrad.ops has no stack",
        ),
        (
            lambda x: np.add.reduce(x),
            "numpy.add.reduce was called on a traced value; use fcgrad.ops (or define",
        ),
        (np.asarray, "a traced value was converted to a numpy array"),
    ],
)
def test_a_numpy_function_names_itself_and_the_op_to_use(
    call: Callable[[Any], Any], message: str
) -> None:
    error = raised_on_a_traced_value(call)
    assert message in str(error)
    assert isinstance(error, FcgradError) and isinstance(error, TypeError)


def test_the_op_is_named_only_when_fcgrad_ops_has_one() -> None:
    message = str(raised_on_a_traced_value(np.abs))  # numpy.absolute is fcgrad.ops.abs, if any
    if hasattr(ops, "abs"):
        assert "numpy.absolute was called on a traced value; use fcgrad.ops.abs" in message
    else:
        assert "fcgrad.ops has no absolute" in message


def test_operators_with_an_array_or_a_numpy_scalar_on_the_left_run_the_ops() -> None:
    a = np.array([1.0, 2.0, 4.0])

    def f(x: Any) -> Any:
        y = (a + x) * (a - x) / (np.float64(2.0) - x * 0.25) + np.negative(x)
        return ops.sum(np.eye(3) @ y)

    x = np.array([0.5, -1.0, 2.0])
    eps = 1e-6
    numeric = [(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(grad(f)(x), numeric, rtol=1e-6)


@pytest.mark.parametrize(
    ("compare", "symbol"),
    [
        (lambda x: x > 0, ">"),
        (lambda x: 0 < x, ">"),  # noqa: SIM300 (the number on the left is the point)
        (lambda x: x <= 1.0, "<="),
        (lambda x: np.ones(3) < x, "<"),
        (lambda x: x == 0, "=="),
        (lambda x: np.ones(3) != x, "!="),
        (lambda x: 1.0 if x.sum() else 0.0, None),  # a truth test
    ],
)
def test_comparisons_and_truth_tests_say_why_a_branch_is_wrong(
    compare: Callable[[Any], Any], symbol: str | None
) -> None:
    message = str(raised_on_a_traced_value(compare))
    what = "has no truth value" if symbol is None else f"a traced value was compared ({symbol})"
    assert what in message
    assert "the gradient hold only on that branch" in message and "cached_vjp" in message


def test_writing_a_traced_value_into_an_array_is_refused() -> None:
    def f(x: Any) -> Any:
        a = np.zeros(3)
        a += x
        return ops.sum(a)

    assert "cannot write a traced value into an array" in str(raised_on_a_traced_value(f))


def test_functions_of_shapes_and_dtypes_and_a_box_as_a_dict_key_still_work() -> None:
    def f(x: Any) -> Any:
        assert (np.shape(x), np.ndim(x), np.size(x), np.size(x, 0)) == ((2, 3), 2, 6, 2)
        assert np.result_type(x, np.float32) == np.float64
        assert {x: 1}[x] == 1  # hashed by identity
        return ops.sum(x)

    assert grad(f)(np.ones((2, 3))).tolist() == [[1.0] * 3] * 2
