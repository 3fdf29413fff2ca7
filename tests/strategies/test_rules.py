"""Every hand-written gradient rule: hand-computed cases and float64 central differences."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.errors import ConfigError, ShapeError
from fcgrad.nn import Activation, Net, forward, init_params, losses
from fcgrad.nn.losses import Loss
from fcgrad.strategies import manual, tape, vwc


def central_diff(f: Callable[[], float], a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d a by float64 central differences; `f` reads `a`, perturbed in place."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        t = a[idx]
        a[idx] = t + h
        up = f()
        a[idx] = t - h
        down = f()
        a[idx] = t
        g[idx] = (up - down) / (2 * h)
    return g


# ----------------------------------------------------------------------------- hand-computed


def test_lin_grad_hand_computed() -> None:
    x = manual.Tensor(np.array([[1.0, 2.0]]))
    w = manual.Tensor(np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]))
    b = manual.Tensor(np.zeros(3))
    out = manual.Tensor(x.value @ w.value + b.value)
    out.grad = np.array([[1.0, 2.0, 3.0]])
    manual.lin_grad(x, out, w, b)
    np.testing.assert_array_equal(x.grad, [[1 - 3, 2 + 2]])  # g @ w.T
    np.testing.assert_array_equal(w.grad, [[1, 2, 3], [2, 4, 6]])  # x.T @ g
    np.testing.assert_array_equal(b.grad, [1, 2, 3])


def test_relu_grad_hand_computed_and_zero_at_zero() -> None:
    inp = manual.Tensor(np.array([-2.0, 0.0, 3.0]))
    out = manual.Tensor(np.maximum(inp.value, 0))
    out.grad = np.array([5.0, 5.0, 5.0])
    manual.relu_grad(inp, out)
    np.testing.assert_array_equal(inp.grad, [0.0, 0.0, 5.0])
    _, pullback = vwc.relu(inp.value)
    np.testing.assert_array_equal(pullback(out.grad), [0.0, 0.0, 5.0])


def test_mse_grad_hand_computed() -> None:
    # loss = ((3-1)^2 + (1-1)^2) / 2 = 2; d/d pred = 2 (pred - y) / N = [2, 0]
    pred, y = np.array([[3.0], [1.0]]), np.array([1.0, 1.0])
    inp = manual.Tensor(pred)
    assert manual.mse_grad(inp, y) == 2.0
    np.testing.assert_array_equal(inp.grad, [[2.0], [0.0]])
    value, pullback = vwc.mse(pred, y)
    assert value == 2.0
    np.testing.assert_array_equal(pullback(1.0), [[2.0], [0.0]])
    assert losses.value(Loss.mse, pred, y) == 2.0


def test_cross_entropy_grad_hand_computed() -> None:
    # equal logits: softmax = 1/2 each; loss = log 2; grad = (p - onehot) / N
    logits, y = np.zeros((2, 2)), np.array([0, 1])
    inp = manual.Tensor(logits)
    assert manual.cross_entropy_grad(inp, y) == pytest.approx(np.log(2.0))
    np.testing.assert_allclose(inp.grad, [[-0.25, 0.25], [0.25, -0.25]])
    value, pullback = vwc.cross_entropy(logits, y)
    assert value == pytest.approx(np.log(2.0))
    np.testing.assert_allclose(pullback(1.0), inp.grad)


# ----------------------------------------------------------------------------- central differences


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.standard_normal((6, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)


def test_lin_rules_match_central_differences(small: tuple[np.ndarray, ...]) -> None:
    x, w, b = (a.copy() for a in small)
    g = np.random.default_rng(4).standard_normal((6, 4))

    def f() -> float:
        return float(np.sum(g * (x @ w + b)))

    dx, dw, db = vwc.lin(x, w, b)[1](g)  # (the pullback gone: x and w may move again)
    tx, tw, tb = manual.Tensor(x), manual.Tensor(w), manual.Tensor(b)
    out = manual.Tensor(x @ w + b)
    out.grad = g
    manual.lin_grad(tx, out, tw, tb)
    for name, a, analytic in (
        ("x", x, (dx, tx.grad)),
        ("w", w, (dw, tw.grad)),
        ("b", b, (db, tb.grad)),
    ):
        numeric = central_diff(f, a)
        for got in analytic:
            np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("loss", list(Loss))
def test_loss_rules_match_central_differences(loss: Loss) -> None:
    rng = np.random.default_rng(5)
    out = rng.standard_normal((7, loss.n_out))
    y = losses.targets(loss, rng.integers(0, 10, 7), np.float64)
    numeric = central_diff(lambda: losses.value(loss, out, y), out)
    inp = manual.Tensor(out)
    (manual.mse_grad if loss is Loss.mse else manual.cross_entropy_grad)(inp, y)
    _, pullback = (vwc.mse if loss is Loss.mse else vwc.cross_entropy)(out, y)
    np.testing.assert_allclose(inp.grad, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pullback(1.0), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("loss", list(Loss))
@pytest.mark.parametrize("hidden", [(8,), (8, 6)])
@pytest.mark.parametrize("name", strategies.NAMES)
def test_strategy_matches_central_differences(
    name: str, hidden: tuple[int, ...], loss: Loss, activation: Activation
) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 5))
    y = losses.targets(loss, rng.integers(0, 10, 9), np.float64)
    net = Net.mlp((5, *hidden, loss.n_out), loss, activation)
    params = init_params(net, 1, np.float64)
    got = strategies.get(name).value_and_grads(net, params, x, y, input_grad=True)
    arrays = {**params.named(), "x": x}

    def f() -> float:
        return losses.value(loss, forward(net, params, x), y)

    assert got.loss == pytest.approx(f(), rel=1e-12)
    assert strategies.get(name).value(net, params, x, y) == pytest.approx(f(), rel=1e-12)
    for key, analytic in got.named().items():
        np.testing.assert_allclose(
            analytic, central_diff(f, arrays[key]), rtol=1e-5, atol=1e-8, err_msg=key
        )


@pytest.mark.parametrize("name", strategies.NAMES)
def test_each_strategy_has_a_row_for_every_kind_the_description_allows(name: str) -> None:
    missing = strategies.missing_rows(strategies.get(name))
    assert not missing, f"strategy {name} has no row for: {', '.join(missing)}"


def test_the_missing_row_test_names_the_kind() -> None:
    """The tester's test: a strategy whose table lacks tanh is reported as missing it."""
    without_tanh = types.SimpleNamespace(
        NAME="partial",
        LAYERS=manual.LAYERS,
        ACTIVATIONS={k: v for k, v in manual.ACTIVATIONS.items() if k is not Activation.tanh},
        LOSSES={},
    )
    assert strategies.missing_rows(without_tanh) == [  # type: ignore[arg-type]
        "activation tanh",
        "loss mse",
        "loss cross-entropy",
    ]


@pytest.mark.parametrize("name", strategies.NAMES)
def test_a_missing_row_at_run_time_names_the_strategy_and_the_kind(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = strategies.get(name)
    table = dict(module.ACTIVATIONS)
    del table[Activation.sigmoid]
    monkeypatch.setattr(module, "ACTIVATIONS", table)
    net = Net.mlp((3, 2, 1), Loss.mse, Activation.sigmoid)
    with pytest.raises(ConfigError, match=f"strategy {name} has no rule for sigmoid"):
        module.value_and_grads(net, init_params(net, 0), np.ones((2, 3), np.float32), np.ones(2))


# activation -> (pre-activations, output cotangent, the input cotangent by hand)
HAND_ACTIVATIONS = {
    Activation.leaky_relu: ([-2.0, 0.0, 3.0], [5.0, 5.0, 5.0], [0.05, 0.05, 5.0]),
    Activation.tanh: ([0.0, math.log(3) / 2], [1.0, 2.0], [1.0, 2.0 * (1 - 0.25)]),  # tanh = 1/2
    Activation.sigmoid: ([0.0, math.log(3)], [1.0, 2.0], [0.25, 2.0 * 0.75 * 0.25]),  # s = 3/4
}


@pytest.mark.parametrize("activation", list(HAND_ACTIVATIONS))
def test_activation_rules_hand_computed(activation: Activation) -> None:
    """manual's rule and vwc's pullback, each against values worked out on paper: leaky's
    slope 0.01 below 0 (and at 0), 1 - tanh^2 with tanh(ln(3)/2) = 1/2, s (1 - s) with
    sigmoid(ln 3) = 3/4."""
    z, g, want = (np.array(v) for v in HAND_ACTIVATIONS[activation])
    fwd, rule = manual.ACTIVATIONS[activation]
    inp, out = manual.Tensor(z), manual.Tensor(fwd(z))
    out.grad = g
    rule(inp, out)
    np.testing.assert_allclose(inp.grad, want, rtol=1e-14)
    _, pullback = vwc.ACTIVATIONS[activation](z)
    np.testing.assert_allclose(pullback(g), want, rtol=1e-14)


# ------------------------------------------------------------------- agreement and contracts


@pytest.mark.parametrize("loss", list(Loss))
def test_three_strategies_agree_in_float32(loss: Loss) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, 784)).astype(np.float32)
    y = losses.targets(loss, rng.integers(0, 10, 200))
    params = init_params([784, 50, loss.n_out], 0)
    results = {
        n: strategies.get(n).value_and_grads(Net.like(params, loss), params, x, y, input_grad=True)
        for n in strategies.NAMES
    }
    ref = results["manual"].named()
    for name, res in results.items():
        assert res.loss == pytest.approx(results["manual"].loss, rel=1e-6)
        for key, g in res.named().items():
            assert g.dtype == np.float32, f"{name} promoted {key}"
            np.testing.assert_allclose(
                g, ref[key], rtol=1e-4, atol=1e-6 * np.abs(ref[key]).max(), err_msg=f"{name} {key}"
            )


@pytest.mark.parametrize("name", strategies.NAMES)
def test_input_gradient_only_when_asked(name: str) -> None:
    x = np.ones((3, 4), np.float32)
    params = init_params([4, 2, 1], 0)
    res = strategies.get(name).value_and_grads(
        Net.like(params, Loss.mse), params, x, np.zeros(3, np.float32)
    )
    assert res.input is None and "x" not in res.named()


@pytest.mark.parametrize("name", strategies.NAMES)
def test_relu_at_exactly_zero_passes_no_gradient(name: str) -> None:
    # w1 = 0 makes every hidden pre-activation exactly 0: no gradient may reach w1 or x.
    params = init_params([3, 2, 1], 0, np.float64)
    params.layers[0].w[...] = 0.0
    x = np.array([[1.0, 2.0, 3.0]])
    res = strategies.get(name).value_and_grads(
        Net.like(params, Loss.mse), params, x, np.array([5.0]), input_grad=True
    )
    np.testing.assert_array_equal(res.params.layers[0].w, 0.0)
    np.testing.assert_array_equal(res.input, 0.0)


@pytest.mark.parametrize("name", strategies.NAMES)
def test_mse_shape_mismatch_raises_instead_of_broadcasting(name: str) -> None:
    params = init_params([4, 3, 1], 0)
    x = np.ones((5, 4), np.float32)
    with pytest.raises(ShapeError, match="mse"):
        strategies.get(name).value_and_grads(
            Net.like(params, Loss.mse), params, x, np.zeros((5, 1), np.float32)
        )


def test_tape_model_and_loss_match_the_plain_forward() -> None:
    rng = np.random.default_rng(8)
    params = init_params([4, 3, 10], 0, np.float64)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 10, 5)
    assert float(tape.cross_entropy(tape.model(Net.like(params), params, x), y)) == pytest.approx(
        losses.value(Loss.cross_entropy, forward(Net.like(params), params, x), y)
    )


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^strategy 'adam' is unknown; choose one of") as e:
        strategies.get("adam")
    assert e.value.param == "strategy"


@pytest.mark.parametrize("name", strategies.NAMES)
def test_a_workspace_gives_the_same_gradients_in_a_reused_buffer(name: str) -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 30)).astype(np.float32)
    y = losses.targets(Loss.mse, rng.integers(0, 10, 40))
    params = init_params([30, 8, 1], 0)
    ws = strategies.Workspace()
    first = strategies.get(name).value_and_grads(
        Net.like(params, Loss.mse), params, x, y, input_grad=True, workspace=ws
    )
    fresh = strategies.get(name).value_and_grads(
        Net.like(params, Loss.mse), params, x, y, input_grad=True
    )
    np.testing.assert_array_equal(first.input, fresh.input)
    assert first.input is ws.buffer("input gradient", x.shape, x.dtype)  # reused, not allocated
    again = strategies.get(name).value_and_grads(
        Net.like(params, Loss.mse), params, 2 * x, y, input_grad=True, workspace=ws
    )
    assert again.input is first.input  # the next call overwrites it, as documented


def test_vwc_pullbacks_hold_the_arrays_they_read() -> None:
    params = init_params([4, 3, 10], 0, np.float64)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 10, 5)
    out, pullback = vwc.model(Net.like(params, Loss.cross_entropy), params, x)
    for array in (params.layers[1].w, params.layers[0].w, x):  # w1: read for dh (need_x)
        with pytest.raises(ValueError, match="read-only"):
            array -= 1.0  # before: a gradient at neither point
    params.layers[1].b[...] = 0.0  # a bias is not read by the pullback: free to change
    g = np.ones_like(out)
    _, grads = pullback(g)
    _, fresh = vwc.model(Net.like(params, Loss.cross_entropy), params, x)
    np.testing.assert_array_equal(grads.layers[0].w, fresh(g)[1].layers[0].w)
    _, pb_lin = vwc.lin(x, params.layers[0].w, params.layers[0].b, need_x=False)
    _, pb_loss = vwc.cross_entropy(out, y)
    del pullback, fresh
    params.layers[1].w -= 1.0  # the model's pullback gone, its weights are writeable again
    with pytest.raises(ValueError, match="read-only"):
        x += 1.0  # lin's pullback still reads x
    params.layers[0].w -= 1.0  # ... but not w, with need_x=False
    with pytest.raises(ValueError, match="read-only"):
        y[0] = 1  # the labels, for cross-entropy's
    del pb_lin, pb_loss
    x += 1.0
    y[0] = 1


def test_vwc_value_and_grads_leaves_its_arrays_writeable() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 10, 5)
    for loss in Loss:
        params = init_params([4, 3, loss.n_out], 0)
        target = losses.targets(loss, y)
        vwc.value_and_grads(Net.like(params, loss), params, x, target, input_grad=True)
        vwc.value(Net.like(params, loss), params, x, target)
        assert all(a.flags.writeable for a in (x, target, *params.arrays()))


@pytest.mark.parametrize("name", strategies.NAMES)
def test_params_of_another_net_and_an_empty_batch_are_shape_errors(name: str) -> None:
    net = Net.mlp((4, 3, 2, 10), Loss.cross_entropy)
    module, x, y = strategies.get(name), np.ones((5, 4), np.float32), np.zeros(5, np.int64)
    with pytest.raises(ShapeError, match="3 dense layers but the parameters 2"):
        module.value_and_grads(net, init_params([4, 3, 10], 0), x, y)
    with pytest.raises(ShapeError, match="N at least 1"):
        module.value_and_grads(net, init_params(net, 0), x[:0], y[:0])


@pytest.mark.parametrize(
    ("sizes", "loss", "activation", "param"),
    [
        ((784, 50.5, 10), "cross-entropy", "relu", "hidden"),
        ((784, True, 10), "cross-entropy", "relu", "hidden"),
        ((784, 50, 1), "cross-entropy", "relu", "loss"),  # one logit: the loss is always 0
        ((784, 50, 10), "mse", "relu", "loss"),
        ((784, 50, 10), "cross-entropy", "gelu", "activation"),
        ((784, 50, 10), "hinge", "relu", "loss"),
    ],
)
def test_a_net_that_cannot_be_built_is_a_config_error(
    sizes: tuple[Any, ...], loss: str, activation: str, param: str
) -> None:
    with pytest.raises(ConfigError) as e:
        Net.mlp(sizes, loss, activation)  # type: ignore[arg-type]
    assert e.value.param == param
