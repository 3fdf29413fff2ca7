"""Every hand-written gradient rule: hand-computed cases and float64 central differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.errors import ShapeError
from fcgrad.nn import losses, model
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
    manual.mse_grad(inp, y)
    np.testing.assert_array_equal(inp.grad, [[2.0], [0.0]])
    value, pullback = vwc.mse(pred, y)
    assert value == 2.0
    np.testing.assert_array_equal(pullback(1.0), [[2.0], [0.0]])
    assert losses.value(Loss.mse, pred, y) == 2.0


def test_cross_entropy_grad_hand_computed() -> None:
    # equal logits: softmax = 1/2 each; loss = log 2; grad = (p - onehot) / N
    logits, y = np.zeros((2, 2)), np.array([0, 1])
    inp = manual.Tensor(logits)
    manual.cross_entropy_grad(inp, y)
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


@pytest.mark.parametrize("loss", list(Loss))
@pytest.mark.parametrize("hidden", [(8,), (8, 6)])
@pytest.mark.parametrize("name", strategies.NAMES)
def test_strategy_matches_central_differences(
    name: str, hidden: tuple[int, ...], loss: Loss
) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 5))
    y = losses.targets(loss, rng.integers(0, 10, 9), np.float64)
    params = model.init_params([5, *hidden, loss.n_out], 1, np.float64)
    got = strategies.get(name).value_and_grads(params, x, y, loss, input_grad=True)
    arrays = {**params.named(), "x": x}

    def f() -> float:
        return losses.value(loss, model.forward(params, x), y)

    assert got.loss == pytest.approx(f(), rel=1e-12)
    for key, analytic in got.named().items():
        np.testing.assert_allclose(
            analytic, central_diff(f, arrays[key]), rtol=1e-5, atol=1e-8, err_msg=key
        )


# ------------------------------------------------------------------- agreement and contracts


@pytest.mark.parametrize("loss", list(Loss))
def test_three_strategies_agree_in_float32(loss: Loss) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, 784)).astype(np.float32)
    y = losses.targets(loss, rng.integers(0, 10, 200))
    params = model.init_params([784, 50, loss.n_out], 0)
    results = {
        n: strategies.get(n).value_and_grads(params, x, y, loss, input_grad=True)
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
    params = model.init_params([4, 2, 1], 0)
    res = strategies.get(name).value_and_grads(params, x, np.zeros(3, np.float32), Loss.mse)
    assert res.input is None and "x" not in res.named()


@pytest.mark.parametrize("name", strategies.NAMES)
def test_relu_at_exactly_zero_passes_no_gradient(name: str) -> None:
    # w1 = 0 makes every hidden pre-activation exactly 0: no gradient may reach w1 or x.
    params = model.init_params([3, 2, 1], 0, np.float64)
    params.layers[0].w[...] = 0.0
    x = np.array([[1.0, 2.0, 3.0]])
    res = strategies.get(name).value_and_grads(
        params, x, np.array([5.0]), Loss.mse, input_grad=True
    )
    np.testing.assert_array_equal(res.params.layers[0].w, 0.0)
    np.testing.assert_array_equal(res.input, 0.0)


@pytest.mark.parametrize("name", strategies.NAMES)
def test_mse_shape_mismatch_raises_instead_of_broadcasting(name: str) -> None:
    params = model.init_params([4, 3, 1], 0)
    x = np.ones((5, 4), np.float32)
    with pytest.raises(ShapeError, match="mse"):
        strategies.get(name).value_and_grads(params, x, np.zeros((5, 1), np.float32), Loss.mse)


def test_tape_model_and_loss_match_the_plain_forward() -> None:
    rng = np.random.default_rng(8)
    params = model.init_params([4, 3, 10], 0, np.float64)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 10, 5)
    assert float(tape.cross_entropy(tape.model(params, x), y)) == pytest.approx(
        losses.value(Loss.cross_entropy, model.forward(params, x), y)
    )


def test_unknown_strategy_is_a_config_error() -> None:
    from fcgrad.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy 'adam'"):
        strategies.get("adam")


@pytest.mark.parametrize("name", strategies.NAMES)
def test_a_workspace_gives_the_same_gradients_in_a_reused_buffer(name: str) -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 30)).astype(np.float32)
    y = losses.targets(Loss.mse, rng.integers(0, 10, 40))
    params = model.init_params([30, 8, 1], 0)
    ws = strategies.Workspace()
    first = strategies.get(name).value_and_grads(
        params, x, y, Loss.mse, input_grad=True, workspace=ws
    )
    fresh = strategies.get(name).value_and_grads(params, x, y, Loss.mse, input_grad=True)
    np.testing.assert_array_equal(first.input, fresh.input)
    assert first.input is ws.buffer("input gradient", x.shape, x.dtype)  # reused, not allocated
    again = strategies.get(name).value_and_grads(
        params, 2 * x, y, Loss.mse, input_grad=True, workspace=ws
    )
    assert again.input is first.input  # the next call overwrites it, as documented


def test_vwc_pullbacks_hold_the_arrays_they_read() -> None:
    params = model.init_params([4, 3, 10], 0, np.float64)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 10, 5)
    out, pullback = vwc.model(params, x)
    for array in (params.layers[1].w, params.layers[0].w, x):  # w1: read for dh (need_x)
        with pytest.raises(ValueError, match="read-only"):
            array -= 1.0  # before: a gradient at neither point
    params.layers[1].b[...] = 0.0  # a bias is not read by the pullback: free to change
    g = np.ones_like(out)
    _, grads = pullback(g)
    _, fresh = vwc.model(params, x)
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
        params = model.init_params([4, 3, loss.n_out], 0)
        target = losses.targets(loss, y)
        vwc.value_and_grads(params, x, target, loss, input_grad=True)
        vwc.value(params, x, target, loss)
        assert all(a.flags.writeable for a in (x, target, *params.arrays()))
