"""Strategy `vwc` ("value with chain"): every op returns `(value, pullback)`.

The lesson's second version, in the style of Swift's `valueWithPullback`:
an op computes its output and returns, beside it, a closure that maps the
cotangent of the output to the cotangents of the op's inputs. `model` composes
the ops' pullbacks in reverse order, so the whole net is itself one op. One op per
kind, in three tables: `LAYERS` (dense: `lin`), `ACTIVATIONS` (relu, leaky-relu,
tanh, sigmoid) and `LOSSES` (mse, cross-entropy).

A pullback reads the caller's arrays (a layer's input and weights, the labels)
when it is called, so `lin`, `model` and `cross_entropy` hold those read-only
while their pullback lives (`fcgrad.engine.autodiff.hold`, as a tape does): changing one
in place in between raises numpy's ValueError ("... is read-only") instead
of giving a gradient at neither point. `value_and_grads` calls the pullbacks at
once, so it holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops
from fcgrad.engine.autodiff import hold
from fcgrad.nn import losses
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Act, Net
from fcgrad.nn.params import Linear, Params
from fcgrad.strategies.base import (
    LossAndGrads,
    Workspace,
    gradient_buffers,
    input_buffer,
    row,
)

NAME = "vwc"

Pullback = Callable[[Any], Any]


def _holding(pullback: Pullback, *arrays: np.ndarray) -> Pullback:
    """`pullback`, with `arrays` (which it reads) read-only while it lives."""
    held = hold(*arrays)

    def holding(g: Any) -> Any:
        _ = held  # (the closure keeps the hold)
        return pullback(g)

    return holding


def lin(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    *,
    need_x: bool = True,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, Pullback]:
    """x @ w + b; pullback(g) -> (g @ w.T or None when not `need_x`, x.T @ g, sum of g rows);
    g @ w.T goes into the workspace's buffer when one is given. x (and w, when `need_x`)
    are read-only while the pullback lives."""
    out, pullback = _lin(x, w, b, need_x, workspace, None)
    return out, _holding(pullback, x, w) if need_x else _holding(pullback, x)


def _lin(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    need_x: bool,
    workspace: Workspace | None,
    grads_into: Linear | None,
) -> tuple[np.ndarray, Pullback]:
    out = ops.add(ops.matmul(x, w), b)
    w_into, b_into = (grads_into.w, grads_into.b) if grads_into else (None, None)

    def pullback(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        dx = np.matmul(g, w.T, out=input_buffer(workspace, g, w)) if need_x else None
        return dx, np.matmul(x.T, g, out=w_into), np.add.reduce(g, axis=0, out=b_into)

    return out, pullback


# (x, w, b, need_x, workspace, grads_into) -> (x @ w + b, pullback); the pullback writes the
# input gradient into the workspace's buffer and w's and b's into `grads_into`, when given
LAYERS = {"dense": _lin}


def relu(x: np.ndarray) -> tuple[np.ndarray, Pullback]:
    """max(x, 0); pullback(g) -> g where x > 0, else 0 (0 at exactly 0)."""
    mask = x > 0
    return ops.relu(x), lambda g: g * mask


def leaky_relu(x: np.ndarray) -> tuple[np.ndarray, Pullback]:
    """x where x > 0, else slope * x; pullback(g) -> g where x > 0, else slope * g."""
    slope = np.where(x > 0, 1.0, ops.LEAKY_SLOPE).astype(x.dtype)
    return ops.leaky_relu(x), lambda g: g * slope


def tanh(x: np.ndarray) -> tuple[np.ndarray, Pullback]:
    """tanh(x); pullback(g) -> g * (1 - tanh(x)^2)."""
    t = ops.tanh(x)
    return t, lambda g: g * (1.0 - np.square(t))


def sigmoid(x: np.ndarray) -> tuple[np.ndarray, Pullback]:
    """sigmoid(x) = s; pullback(g) -> g * s * (1 - s)."""
    s = ops.sigmoid(x)
    return s, lambda g: g * (s * (1.0 - s))


ACTIVATIONS: dict[Activation, Callable[[np.ndarray], tuple[np.ndarray, Pullback]]] = {
    Activation.relu: relu,
    Activation.leaky_relu: leaky_relu,
    Activation.tanh: tanh,
    Activation.sigmoid: sigmoid,
}


def mse(out: np.ndarray, y: np.ndarray) -> tuple[float, Pullback]:
    """mean((out[:, 0] - y)**2) for out (N, 1), y (N,); pullback(g: float) -> (N, 1)."""
    losses.check_mse_shapes(out.shape, y.shape)
    diff = out - y[:, None]
    return float(ops.mean(np.square(diff))), lambda g: diff * (2.0 * g / y.shape[0])


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, Pullback]:
    """-mean(log_softmax(logits)[y]) in nats; pullback(g) -> g (softmax - onehot) / N; the
    labels y are read-only while the pullback lives."""
    value, pullback = _cross_entropy(logits, y)
    return value, _holding(pullback, y)


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, Pullback]:
    losses.check_ce_shapes(logits.shape, y.shape)
    logp = ops.log_softmax(logits)
    rows = np.arange(y.shape[0])

    def pullback(g: float) -> np.ndarray:
        d = np.exp(logp)
        d[rows, y] -= 1
        grad: np.ndarray = d * (g / y.shape[0])
        return grad

    return float(-ops.mean(logp[rows, y])), pullback


LOSSES: dict[Loss, Callable[[np.ndarray, np.ndarray], tuple[float, Pullback]]] = {
    Loss.mse: mse,
    Loss.cross_entropy: _cross_entropy,
}


def model(
    net: Net,
    params: Params,
    x: np.ndarray,
    *,
    need_x: bool = True,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, Pullback]:
    """The net as one op: output (N, n_out) and pullback(g) -> (dx or None, Params of grads).
    x and the weights the pullback reads are read-only while it lives."""
    out, pullback = _model(net, params, x, need_x, workspace)
    read = [layer.w for i, layer in enumerate(params.layers) if need_x or i > 0]
    return out, _holding(pullback, x, *read)


def _model(
    net: Net, params: Params, x: np.ndarray, need_x: bool, workspace: Workspace | None
) -> tuple[np.ndarray, Pullback]:
    pullbacks: list[tuple[bool, Pullback]] = []  # (has parameters, pullback)
    dest = gradient_buffers(workspace, params, x)
    h = x
    for i, (layer, p) in enumerate(net.walk(params)):
        if isinstance(layer, Act):
            h, pb = row(ACTIVATIONS, layer.activation, NAME)(h)
        elif p is not None:
            ws = workspace if i == 0 else None  # only the input gradient is large
            into = dest.layers[sum(has for has, _ in pullbacks)] if dest else None
            h, pb = row(LAYERS, layer.kind, NAME)(h, p.w, p.b, need_x or i > 0, ws, into)
        pullbacks.append((p is not None, pb))

    def pullback(g: np.ndarray) -> tuple[np.ndarray | None, Params]:
        layers = []
        for has_params, pb in reversed(pullbacks):
            if has_params:
                g, dw, db = pb(g)
                layers.append(Linear(dw, db))
            else:
                g = pb(g)
        return g, Params(tuple(reversed(layers)))

    return h, pullback


def value(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of the net on (x, y), building the pullbacks as a forward pass does."""
    out, _ = _model(net, params, x, True, None)
    return row(LOSSES, net.loss, NAME)(out, y)[0]


def value_and_grads(
    net: Net,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and its gradients, by composing the ops' pullbacks in reverse (called at once:
    nothing is held read-only)."""
    out, pb_model = _model(net, params, x, input_grad, workspace)
    loss_value, pb_loss = row(LOSSES, net.loss, NAME)(out, y)
    dx, grads = pb_model(pb_loss(1.0))
    return LossAndGrads(loss_value, grads, dx)
