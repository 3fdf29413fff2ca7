"""cached_vjp: a recorded program must give exactly what a fresh tape gives, on new values."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.engine import ops, replay
from fcgrad.engine.autodiff import custom_vjp, grad, primitive, unbox, vjp
from fcgrad.engine.replay import cached_vjp
from fcgrad.errors import ConfigError, ShapeError
from fcgrad.nn import Net, init_params
from fcgrad.nn.losses import Loss
from fcgrad.strategies import Workspace, manual, tape
from tests.engine.test_ops import OP_TABLE


def programs(vjp_of: Any) -> dict[Any, replay.Program | replay.NotReplayed]:
    """The programs a cached_vjp function holds, by signature."""
    return vjp_of.programs  # type: ignore[no-any-return]


def not_replayed(vjp_of: Any) -> str:
    """Why the only signature of a cached_vjp function runs on fresh tapes."""
    (entry,) = programs(vjp_of).values()
    assert isinstance(entry, replay.NotReplayed)
    return entry.reason


def assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert np.result_type(a) == np.result_type(b)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(OP_TABLE))
def test_every_op_replays_bit_for_bit_on_new_values(name: str) -> None:
    fn, gens, shape_list = OP_TABLE[name]
    shapes = shape_list[0]
    f = cached_vjp(lambda *xs: ops.sum(fn(*xs)), tuple(range(len(gens))))
    for seed in range(3):  # the first call records, the others replay
        rng = np.random.default_rng(seed)
        args = [np.asarray(gen(s, rng), dtype=np.float64) for gen, s in zip(gens, shapes)]
        value, pullback = f(*args)
        expected_value, expected_pullback = vjp(lambda *xs: ops.sum(fn(*xs)), *args)
        assert_same(value, expected_value)
        for got, want in zip(pullback(np.float64(1.5)), expected_pullback(np.float64(1.5))):
            assert_same(got, want)
    assert len(programs(f)) == 1 and isinstance(next(iter(programs(f).values())), replay.Program)


@pytest.mark.parametrize("loss", list(Loss))
@pytest.mark.parametrize("input_grad", [False, True])
def test_the_tape_strategy_matches_a_fresh_tape_step_after_step(
    loss: Loss, input_grad: bool
) -> None:
    params = init_params((784, 50, loss.n_out), seed=1)
    rng = np.random.default_rng(2)
    ws = Workspace()
    objective = tape.mse if loss is Loss.mse else tape.cross_entropy
    for _ in range(3):
        x = rng.standard_normal((64, 784)).astype(np.float32)
        labels = rng.integers(0, 10, 64)
        y = labels.astype(np.float32) if loss is Loss.mse else labels
        got = tape.value_and_grads(
            Net.like(params, loss), params, x, y, input_grad=input_grad, workspace=ws
        )
        value, pullback = vjp(
            lambda x, p, y=y: objective(tape.model(Net.like(p, Loss.cross_entropy), p, x), y),
            x,
            params,
        )
        dx, dp = pullback(np.ones_like(value))
        assert got.loss == float(value)
        for a, b in zip(got.params.arrays(), dp.arrays()):
            assert_same(a, b)
        if input_grad:
            assert_same(got.input, dx)
            assert got.input is ws.buffer("input gradient", x.shape, x.dtype)  # written in place


def test_targets_are_inputs_not_constants_of_the_recording() -> None:
    params = init_params((4, 3, 1), seed=0)
    x = np.ones((5, 4), np.float32)
    first = tape.value_and_grads(Net.like(params, Loss.mse), params, x, np.zeros(5, np.float32))
    second = tape.value_and_grads(
        Net.like(params, Loss.mse), params, x, np.full(5, 9.0, np.float32)
    )
    assert first.loss != second.loss
    assert not np.array_equal(first.params.layers[1].b, second.params.layers[1].b)


def test_a_new_shape_is_recorded_again_and_old_programs_are_dropped() -> None:
    f = cached_vjp(lambda x: ops.sum(ops.square(x)))
    for n in range(1, replay.MAX_SIGNATURES + 3):
        _, pullback = f(np.arange(n, dtype=np.float64))
        np.testing.assert_array_equal(pullback(1.0)[0], 2 * np.arange(n))
    assert len(programs(f)) == replay.MAX_SIGNATURES


def test_the_program_is_the_forward_then_the_backward_numpy_calls() -> None:
    f = cached_vjp(lambda x, w: ops.sum(ops.relu(ops.matmul(x, w))), 1)
    f(np.ones((2, 3)), np.ones((3, 4)))
    source = next(iter(programs(f).values())).source
    forward, backward = source.split("\n\n")
    calls = [line.split("# ")[1] for line in forward.splitlines() if "# " in line]
    assert calls == ["matmul", "relu", "sum"]
    # the rules' own decisions (unbroadcasting, which transpose) are gone: numpy calls remain
    assert "positive" in backward and "matmul" in backward and "broadcast_to" in backward
    # relu's output is freed once sum has read it (relu's rule reads its input instead),
    # and x @ w once the backward pass has taken the mask of it
    assert "    v[4] = None" in forward.splitlines() and "    v[3] = None" in backward.splitlines()


def test_intermediate_arrays_are_freed_after_their_last_use() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 784)).astype(np.float32)
    params = init_params((784, 50, 10), seed=0)
    labels = rng.integers(0, 10, 2000)

    net = Net.like(params, Loss.cross_entropy)

    def peak(step: Any) -> int:
        tracemalloc.start()
        try:
            step(net, params, x, labels)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    tape.value_and_grads(net, params, x, labels)  # recorded: replays from here
    # no more than the hand-written strategy holds, give or take two (2000, 50) arrays
    assert peak(tape.value_and_grads) < peak(manual.value_and_grads) + 2 * 2000 * 50 * 4


def test_a_rule_that_computes_with_plain_numpy_falls_back_to_a_fresh_tape() -> None:
    # the rule reads the values of `ans` outside the primitives: replaying would reuse them
    tanh = custom_vjp(np.tanh, lambda g, ans, x: ops.mul(g, 1.0 - unbox(ans) ** 2))
    f = cached_vjp(lambda x: ops.sum(tanh(x)))
    with pytest.warns(replay.ReplayWarning, match=r"a VJP rule read a traced value \(unbox\)"):
        f(np.array([0.1, 0.2]))
    for x in (np.array([0.1, 0.2]), np.array([1.5, -2.0])):
        np.testing.assert_allclose(f(x)[1](1.0)[0], 1 - np.tanh(x) ** 2)
    assert "read a traced value" in not_replayed(f)


def test_changing_a_rule_records_the_program_again(monkeypatch: pytest.MonkeyPatch) -> None:
    f = cached_vjp(lambda x: ops.sum(ops.square(x)))
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(x)[1](1.0)[0], [2.0, 4.0])
    monkeypatch.setitem(ops.square.vjps, 0, lambda g, ans, x: ops.mul(g, x))  # factor 2 lost
    np.testing.assert_array_equal(f(x)[1](1.0)[0], [1.0, 2.0])


def test_numpy_on_a_non_differentiated_argument_is_not_baked_in() -> None:
    f = cached_vjp(lambda x, y: ops.sum(ops.mul(x, np.exp(y))), 0)
    with pytest.warns(replay.ReplayWarning, match="numpy.exp was called on a traced value"):
        f(np.ones(3), np.zeros(3))
    for y in (np.zeros(3), np.ones(3)):  # so it runs on fresh tapes, on the y of each call
        assert f(np.ones(3), y)[1](1.0)[0].tolist() == np.exp(y).tolist()


def test_only_the_differentiated_arguments_get_gradients_and_into_buffers() -> None:
    f = cached_vjp(lambda x, w, y: ops.sum(ops.mul(ops.matmul(x, w), y)), (0, 1))
    x, w, y = np.ones((2, 3)), np.full((3, 2), 0.5), np.array([1.0, 2.0])
    _, pullback = f(x, w, y)
    buf = np.empty_like(x)
    dx, dw = pullback(1.0, into={0: buf})
    assert dx is buf
    np.testing.assert_array_equal(dx, np.tile(w @ y, (2, 1)))
    np.testing.assert_array_equal(dw, np.outer(x.sum(0), y))
    with pytest.raises(ShapeError, match="into"):
        pullback(1.0, into={2: np.empty(2)})  # y is not differentiated
    with pytest.raises(ShapeError, match="into"):
        pullback(1.0, into={0: np.empty((3, 2))})
    with pytest.raises(ShapeError, match="cotangent shape"):
        pullback(np.ones(2))


def test_pytrees_python_floats_and_integers_as_in_vjp() -> None:
    def f(p: dict[str, Any], k: Any) -> Any:
        return ops.sum(ops.mul(ops.mul(p["w"], p["s"]), k))

    g = cached_vjp(f, (0, 1))
    for s in (2.0, 3.0):
        p = {"w": np.arange(3, dtype=np.float32), "s": s}
        (dp, dk), (ep, ek) = g(p, 4)[1](np.float32(1)), vjp(f, p, 4)[1](np.float32(1))
        assert_same(dp["w"], ep["w"])
        assert dp["s"] == ep["s"] and type(dp["s"]) is float
        assert_same(dk, ek)


def test_inside_grad_it_uses_a_fresh_tape_so_second_derivatives_work() -> None:
    f = cached_vjp(lambda x: ops.sum(ops.mul(ops.square(x), x)))  # sum x^3

    def first(x: Any) -> Any:
        return ops.sum(f(x)[1](1.0)[0])  # sum 3 x^2

    np.testing.assert_allclose(grad(first)(np.array([1.0, 2.0])), [6.0, 12.0])


def test_a_closed_over_traced_value_uses_a_fresh_tape() -> None:
    def outer(z: Any) -> Any:
        f = cached_vjp(lambda x: ops.sum(ops.mul(x, z)))
        return f(np.full(2, 3.0))[0]

    with pytest.warns(replay.ReplayWarning, match="traced outside"):
        assert grad(outer)(np.ones(2)).tolist() == [3.0, 3.0]


def test_new_primitives_keep_programs_and_a_new_forward_records_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = cached_vjp(lambda x: ops.sum(ops.relu(x)))
    x = np.array([-1.0, 2.0])
    f(x)
    program = next(iter(programs(f).values()))
    custom_vjp(np.tanh, lambda g, ans, x: g)  # defining another op changes nothing recorded
    f(x)
    assert next(iter(programs(f).values())) is program
    monkeypatch.setattr(ops.relu, "fwd", lambda x: np.maximum(x, 1.0))
    assert f(x)[0] == 3.0  # max(-1, 1) + max(2, 1), not the recorded relu's 2.0


# ---------------------------------------------------------------- what a reviewer broke


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
    value, pullback = vjp(
        lambda p: tape.cross_entropy(tape.model(Net.like(p, Loss.cross_entropy), p, x), y), params
    )
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


# ----------------------------------------------------------------- random programs


UNARY_OPS = {"neg": ops.neg, "square": ops.square, "sin": ops.sin, "cos": ops.cos, "relu": ops.relu}
BINARY_OPS = {"add": ops.add, "sub": ops.sub, "mul": ops.mul, "maximum": ops.maximum}
REDUCTIONS = {
    "sum0": lambda v: ops.sum(v, axis=0),
    "mean1": lambda v: ops.mean(v, axis=1, keepdims=True),
}
STEP = st.tuples(
    st.sampled_from(sorted(UNARY_OPS) + sorted(BINARY_OPS) + sorted(REDUCTIONS)),
    st.integers(0, 63),
    st.integers(0, 63),
)


def random_program(steps: list[tuple[str, int, int]]) -> Callable[..., Any]:
    """f(a (3, 4), b (4,), c (3, 1)): each step applies an op to earlier values (any two
    broadcast together); the result sums the last value and one earlier one."""

    def f(a: Any, b: Any, c: Any) -> Any:
        pool = [a, b, c]
        for name, i, j in steps:
            x, y = pool[i % len(pool)], pool[j % len(pool)]
            if name in UNARY_OPS:
                pool.append(UNARY_OPS[name](x))
            elif name in BINARY_OPS:
                pool.append(BINARY_OPS[name](x, y))
            elif x.shape == (3, 4):
                pool.append(REDUCTIONS[name](x))
        return ops.add(ops.sum(pool[-1]), ops.mean(pool[len(pool) // 2]))

    return f


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=8), seed=st.integers(0, 2**31))
def test_random_programs_replay_bit_for_bit(steps: list[tuple[str, int, int]], seed: int) -> None:
    f = random_program(steps)
    cached = cached_vjp(f, (0, 1, 2))
    rng = np.random.default_rng(seed)
    for _ in range(3):  # the first call records, the others replay on new values
        args = (rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((3, 1)))
        value, pullback = cached(*args)
        want_value, want_pullback = vjp(f, *args)
        assert_same(value, want_value)
        for _ in range(2):  # and the pullback may be called again
            for got, want in zip(pullback(1.5), want_pullback(1.5)):
                assert_same(got, want)
    assert isinstance(next(iter(programs(cached).values())), replay.Program)


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
