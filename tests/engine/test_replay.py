"""cached_vjp: a recorded program must give exactly what a fresh tape gives, on new values."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.engine import ops, replay
from fcgrad.engine.autodiff import custom_vjp, grad, unbox, vjp
from fcgrad.engine.replay import cached_vjp
from fcgrad.errors import ShapeError
from fcgrad.nn import Net, init_params
from fcgrad.nn.losses import Loss
from fcgrad.strategies import Workspace, manual, tape
from tests.engine.op_table import OP_TABLE
from tests.engine.replay_helpers import assert_same, not_replayed, programs


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
            lambda x, p, y=y: objective(tape.model(Net.like(p), p, x), y),
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
