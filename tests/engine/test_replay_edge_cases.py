"""cached_vjp where a reviewer broke it: value-dependent rules, types, buffers, in-place writes."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fcgrad.engine import ops, replay
from fcgrad.engine.autodiff import custom_vjp, grad, primitive, unbox, vjp
from fcgrad.engine.replay import cached_vjp
from fcgrad.errors import ConfigError
from fcgrad.nn import Net, init_params
from fcgrad.nn.losses import Loss
from fcgrad.strategies import tape
from tests.engine.replay_helpers import assert_same, not_replayed, programs


def test_value_dependent_rules_and_unbox_in_f_are_not_replayed() -> None:
    cases = {
        # a plain-numpy rule whose result was all zeros when recorded
        "zeros at recording": (
            custom_vjp(
                lambda x: np.maximum(x, 0.0),
                lambda g, ans, x: np.where(unbox(x) > 0, unbox(g), 0.0),
            ),
            np.array([-1.0, -2.0]),
            np.array([1.0, 2.0]),
        ),
        # a Python float computed from a value
        "python float": (
            custom_vjp(lambda x: x * x, lambda g, ans, x: ops.mul(g, 2 * float(unbox(x)))),
            3.0,
            5.0,
        ),
        # a branch on a value
        "branch": (
            custom_vjp(np.abs, lambda g, ans, x: g if float(unbox(x)) >= 0 else ops.neg(g)),
            np.array(2.0),
            np.array(-2.0),
        ),
    }
    for name, (op, first, second) in cases.items():
        f = cached_vjp(lambda x, op=op: ops.sum(op(x)))
        with pytest.warns(replay.ReplayWarning):
            f(first)
        got = f(second)[1](1.0)[0]
        want = vjp(lambda x, op=op: ops.sum(op(x)), second)[1](1.0)[0]
        assert_same(got, want), name
        assert "a VJP rule read a traced value (unbox)" in not_replayed(f), name
    f = cached_vjp(lambda x: ops.sum(ops.mul(x, unbox(x))))  # unbox: a stop-gradient in f
    with pytest.warns(replay.ReplayWarning, match=r"f read a traced value \(unbox\)"):
        f(np.array([1.0, 2.0]))
    value, pullback = f(np.array([10.0, 20.0]))
    assert value == 500.0 and pullback(1.0)[0].tolist() == [10.0, 20.0]


def test_zero_gradients_are_fresh_arrays_for_each_caller() -> None:
    f = cached_vjp(lambda x, y: ops.sum(x), (0, 1))
    o = np.ones(3)
    dy = f(o, o)[1](1.0)[1]
    dy += 5
    assert f(o, o)[1](1.0)[1].tolist() == [0.0, 0.0, 0.0]


def test_arguments_not_differentiated_keep_their_type() -> None:
    f = cached_vjp(lambda x, k: ops.sum(ops.mul(x, k)), 0)
    value, _ = f(np.ones(3, np.float32), 3)  # a Python int stays a weak scalar, as in vjp
    assert type(value) is np.float32 and value == 9.0
    g = cached_vjp(lambda x, scale: ops.sum(x) if scale is None else ops.sum(ops.mul(x, 2.0)), 0)
    with pytest.warns(replay.ReplayWarning, match="not differentiated is a NoneType"):
        assert g(np.ones(3), None)[0] == 3.0  # not recorded, run on a fresh tape


def test_into_arrays_that_overlap_an_input_or_are_not_c_contiguous() -> None:
    def f(x: Any, w: Any) -> Any:
        return ops.sum(ops.square(ops.matmul(x, w)))

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 30)), rng.standard_normal((30, 5))
    _, pullback = cached_vjp(f, (0, 1))(x, w)
    with pytest.raises(ConfigError, match="shares memory"):
        pullback(1.0, into={0: x})
    want = vjp(f, x, w)[1](1.0)
    fortran = np.empty_like(x, order="F")
    dx, dw = pullback(1.0, into={0: fortran})
    assert dx is fortran
    assert_same(np.ascontiguousarray(dx), want[0])
    assert_same(dw, want[1])


def test_a_traced_cotangent_differentiates_through_the_pullback() -> None:
    x = np.array([0.5, 1.0])
    _, pullback = cached_vjp(ops.sin)(x)
    np.testing.assert_allclose(grad(lambda c: ops.sum(pullback(c)[0]))(np.ones(2)), np.cos(x))


def test_repeated_argnums_are_refused() -> None:
    with pytest.raises(ConfigError, match="distinct"):
        cached_vjp(ops.mul, (0, 0))


def test_every_way_of_changing_a_rule_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    f = cached_vjp(lambda x: ops.sum(ops.square(x)))
    x = np.array([1.0, 2.0])
    f(x)
    wrong = {0: lambda g, ans, x: ops.mul(g, x)}
    monkeypatch.setattr(ops.square, "vjps", wrong)  # the whole dict
    assert f(x)[1](1.0)[0].tolist() == [1.0, 2.0]
    ops.square.vjps.update({0: lambda g, ans, x: ops.mul(g, ops.mul(x, 3.0))})  # and after it
    assert f(x)[1](1.0)[0].tolist() == [3.0, 6.0]


def test_least_recently_used_programs_are_kept() -> None:
    f = cached_vjp(lambda x: ops.sum(x))
    hot = np.ones(1)
    for n in range(2, 2 + 3 * replay.MAX_SIGNATURES):
        f(hot)
        f(np.ones(n))
    assert ((1,), hot.dtype) in {key[0] for key in programs(f)}


def test_mixed_dtype_params_match_a_fresh_tape() -> None:
    params = init_params((20, 7, 10), seed=0)
    params.layers[0].w = params.layers[0].w.astype(np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 20)).astype(np.float32), rng.integers(0, 10, 6)
    got = tape.value_and_grads(Net.like(params, Loss.cross_entropy), params, x, y)
    value, pullback = vjp(lambda p: tape.cross_entropy(tape.model(Net.like(p), p, x), y), params)
    assert got.loss == float(value)
    for a, b in zip(got.params.arrays(), pullback(np.ones_like(value))[0].arrays()):
        assert_same(a, b)


def test_the_value_is_read_only_when_the_pullback_reads_it_and_fresh_when_constant() -> None:
    x = np.array([0.0, 1.0, 2.0])
    value, pullback = cached_vjp(ops.exp)(x)
    with pytest.raises(ValueError, match="read-only"):
        value *= 0  # exp's rule reads its output, as in vjp
    np.testing.assert_array_equal(pullback(np.ones(3))[0], np.exp(x))
    f = cached_vjp(lambda x: np.zeros(3))  # a constant output
    first = f(x)[0]
    first += 1
    assert f(x)[0].tolist() == [0.0, 0.0, 0.0]


def test_a_primitive_without_a_rule_may_take_an_argument_not_differentiated() -> None:
    onehot = primitive(lambda y: np.eye(3)[y])  # no VJP rule at all

    def f(z: Any, y: Any) -> Any:
        return ops.sum(ops.mul(ops.log_softmax(z), onehot(y)))

    g = cached_vjp(f, 0)
    z = np.arange(6.0).reshape(2, 3)
    for y in (np.array([0, 2]), np.array([1, 1])):
        got = g(z, y)[1](1.0)[0]
        assert_same(got, vjp(lambda z, y=y: f(z, y), z)[1](1.0)[0])
    assert isinstance(next(iter(programs(g).values())), replay.Program)


def test_small_integer_arrays_and_python_ints_replay() -> None:
    f = cached_vjp(lambda x, m, k: ops.sum(ops.mul(x, ops.mul(m, k))), 0)
    x = np.ones(3)
    for k in (3, 200):
        got = f(x, np.array([1, 2, 3], np.uint8), k)[1](1.0)[0]
        want = vjp(lambda x, k=k: ops.sum(ops.mul(x, ops.mul(np.uint8([1, 2, 3]), k))), x)
        assert_same(got, want[1](1.0)[0])
    assert isinstance(next(iter(programs(f).values())), replay.Program)


def test_a_numpy_integer_axis_and_negative_argnums() -> None:
    f = cached_vjp(lambda x: ops.sum(ops.sum(x, axis=np.int64(0))))
    assert f(np.ones((2, 3)))[1](1.0)[0].tolist() == [[1.0] * 3] * 2
    with pytest.raises(ConfigError, match="0 or more"):
        cached_vjp(ops.mul, (1, -1))


# ------------------------------------------------ in-place changes and reads of values


def test_an_input_changed_in_place_before_the_replayed_pullback_raises() -> None:
    f = cached_vjp(lambda x, w: ops.sum(ops.square(ops.matmul(x, w))), (0, 1))
    x, w = np.arange(6.0).reshape(2, 3), np.full((3, 2), 0.5)
    f(x, w)  # recorded: the calls below replay
    value, pullback = f(x, w)
    for array in (x, w):  # the program's backward pass reads both
        with pytest.raises(ValueError, match="read-only"):
            array += 1.0
    want_value, want_pullback = vjp(lambda x, w: ops.sum(ops.square(ops.matmul(x, w))), x, w)
    assert_same(value, want_value)  # the gradient is at the point of the call, as vjp's
    for got, want in zip(pullback(1.0), want_pullback(1.0)):
        assert_same(got, want)
    del pullback, want_pullback
    gc.collect()
    w -= 0.1  # the pullback gone, the inputs are writeable again
    assert x.flags.writeable and w.flags.writeable


def test_a_closed_over_array_changed_in_place_before_the_replayed_pullback_raises() -> None:
    c = np.array([1.0, 2.0, 3.0])
    f = cached_vjp(lambda x: ops.sum(ops.mul(ops.square(x), c)))
    x = np.array([0.5, -1.0, 2.0])
    f(x)
    value, pullback = f(x)
    with pytest.raises(ValueError, match="read-only"):
        c *= 2.0  # a constant of the program, read by its backward pass
    assert value == float(np.sum(x * x * c))
    np.testing.assert_array_equal(pullback(1.0)[0], 2 * x * c)
    del pullback
    c *= 2.0  # changed in place between calls: seen by the next one, as documented
    np.testing.assert_array_equal(f(x)[1](1.0)[0], 2 * x * c)


def test_a_replayed_pullback_and_a_tape_holding_one_array_release_it_together() -> None:
    w = np.ones((3, 2))
    f = cached_vjp(lambda w: ops.sum(ops.square(w)))
    f(w)
    _, replayed = f(w)
    _, taped = vjp(lambda w: ops.sum(ops.exp(w)), w)
    del taped
    gc.collect()
    assert not w.flags.writeable  # the replayed pullback still holds it
    _, taped = vjp(lambda w: ops.sum(ops.exp(w)), w)
    del replayed
    gc.collect()
    assert not w.flags.writeable  # and now the tape does
    del taped
    gc.collect()
    assert w.flags.writeable
    frozen = np.ones(2)
    frozen.flags.writeable = False  # read-only before: stays so after a hold
    f(frozen)[1](1.0)  # (the pullback is gone after this line)
    assert not frozen.flags.writeable


def test_value_and_grad_and_value_run_at_once_and_hold_nothing() -> None:
    f = cached_vjp(lambda x, w: ops.sum(ops.square(ops.matmul(x, w))), 1)
    x, w = np.arange(6.0).reshape(2, 3), np.full((3, 2), 0.5)
    for _ in range(2):  # the first call records, the second replays
        value, (dw,) = f.value_and_grad(x, w)
        assert x.flags.writeable and w.flags.writeable
        want_value, want_pullback = vjp(lambda w: ops.sum(ops.square(ops.matmul(x, w))), w)
        assert_same(value, want_value)
        assert_same(dw, want_pullback(np.ones_like(want_value))[0])
        del want_pullback  # (vjp's tape holds x and w)
        assert_same(f.value(x, w), want_value)
        assert x.flags.writeable and w.flags.writeable


def test_the_tape_strategy_leaves_its_arrays_writeable() -> None:
    params = init_params((5, 4, 10), seed=0)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 10, 6)
    for input_grad in (False, True):
        for _ in range(2):
            tape.value_and_grads(
                Net.like(params, Loss.cross_entropy), params, x, y, input_grad=input_grad
            )
            tape.value(Net.like(params, Loss.cross_entropy), params, x, y)
            assert all(a.flags.writeable for a in (x, y, *params.arrays()))


READS: dict[str, Callable[[Any], bool]] = {
    "unbox": lambda x: bool(unbox(x).sum() > 0),
    ".value": lambda x: bool(np.sum(x.value) > 0),
    "float": lambda x: float(ops.sum(x)) > 0,
    "int": lambda x: int(ops.sum(x)) >= 0,
    "repr": lambda x: "-" not in repr(ops.sum(x)),
    "format": lambda x: float(f"{ops.sum(x)}") > 0,
}


@pytest.mark.parametrize("how", sorted(READS))
def test_a_branch_on_a_value_is_never_replayed(how: str) -> None:
    def f(x: Any) -> Any:
        return ops.sum(ops.square(x)) if READS[how](x) else ops.sum(x)

    cached = cached_vjp(f)
    first = np.array([0.1, 0.1])  # sum 0.2: so is that of the other values the guard records
    with pytest.warns(replay.ReplayWarning, match=rf"f read a traced value \({how}\)"):
        assert_same(cached(first)[1](1.0)[0], vjp(f, first)[1](1.0)[0])
    assert "baked into the program" in not_replayed(cached)
    other = np.array([-1.0, -2.0])  # the other branch: sum(x), gradient ones
    got = cached(other)[1](1.0)[0]
    assert_same(got, vjp(f, other)[1](1.0)[0])
    assert got.tolist() == [1.0, 1.0]


def test_reading_a_value_is_allowed_with_vjp() -> None:
    def f(x: Any) -> Any:
        scale = float(ops.sum(x))  # a constant for the gradient
        return ops.mul(ops.sum(ops.square(x)), scale) if x.value[0] > 0 else ops.sum(x)

    assert grad(f)(np.array([1.0, 2.0])).tolist() == [6.0, 12.0]
    assert grad(f)(np.array([-1.0, 2.0])).tolist() == [1.0, 1.0]


def test_shapes_are_not_reads_and_other_values_still_guard_against_state() -> None:
    def by_shape(x: Any) -> Any:
        n = x.shape[0] + len(x) + np.shape(x)[0] + np.ndim(x) + np.size(x)
        assert np.result_type(x) == np.float64 and x.dtype == np.float64
        return ops.div(ops.sum(x), float(n))

    f = cached_vjp(by_shape)
    f(np.ones(3))
    assert isinstance(next(iter(programs(f).values())), replay.Program)
    calls = itertools.count(1)
    g = cached_vjp(lambda x: ops.sum(ops.mul(x, float(next(calls)))))  # no read, yet no program
    with pytest.warns(replay.ReplayWarning, match="differed"):
        g(np.ones(2))
    assert "besides the arguments" in not_replayed(g)
