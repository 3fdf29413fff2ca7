"""Strategy `vwc` ("value with chain"): every op returns `(value, pullback)`.

The lesson's second version, in the style of Swift's `valueWithPullback`:
an op computes its output and returns, beside it, a closure that maps the
cotangent of the output to the cotangents of the op's inputs. `model` composes
the ops' pullbacks in reverse order, so the whole net is itself one op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad import losses, ops
from fcgrad.losses import Loss
from fcgrad.model import Linear, Params
from fcgrad.strategies import LossAndGrads, Workspace, input_buffer

Pullback = Callable[[Any], Any]


def lin(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    *,
    need_x: bool = True,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, Pullback]:
    """x @ w + b; pullback(g) -> (g @ w.T or None when not `need_x`, x.T @ g, sum of g rows);
    g @ w.T goes into the workspace's buffer when one is given."""
    out = ops.add(ops.matmul(x, w), b)

    def pullback(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        dx = np.matmul(g, w.T, out=input_buffer(workspace, g, w)) if need_x else None
        return dx, x.T @ g, g.sum(axis=0)

    return out, pullback


def relu(x: np.ndarray) -> tuple[np.ndarray, Pullback]:
    """max(x, 0); pullback(g) -> g where x > 0, else 0 (0 at exactly 0)."""
    mask = x > 0
    return ops.relu(x), lambda g: g * mask


def mse(out: np.ndarray, y: np.ndarray) -> tuple[float, Pullback]:
    """mean((out[:, 0] - y)**2) for out (N, 1), y (N,); pullback(g: float) -> (N, 1)."""
    losses.check_mse_shapes(out.shape, y.shape)
    diff = out - y[:, None]
    return float(np.mean(np.square(diff))), lambda g: diff * (2.0 * g / y.shape[0])


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, Pullback]:
    """-mean(log_softmax(logits)[y]) in nats; pullback(g) -> g (softmax - onehot) / N."""
    losses.check_ce_shapes(logits.shape, y.shape)
    logp = ops.log_softmax(logits)
    rows = np.arange(y.shape[0])

    def pullback(g: float) -> np.ndarray:
        d = np.exp(logp)
        d[rows, y] -= 1
        return d * (g / y.shape[0])

    return float(-np.mean(logp[rows, y])), pullback


def model(
    params: Params, x: np.ndarray, *, need_x: bool = True, workspace: Workspace | None = None
) -> tuple[np.ndarray, Pullback]:
    """The net as one op: output (N, n_out) and pullback(g) -> (dx or None, Params of grads)."""
    pullbacks: list[Pullback] = []
    h = x
    last = len(params.layers) - 1
    for i, layer in enumerate(params.layers):
        ws = workspace if i == 0 else None  # only the input gradient is large
        h, pb_lin = lin(h, layer.w, layer.b, need_x=need_x or i > 0, workspace=ws)
        pullbacks.append(pb_lin)
        if i < last:
            h, pb_relu = relu(h)
            pullbacks.append(pb_relu)

    def pullback(g: np.ndarray) -> tuple[np.ndarray | None, Params]:
        layers = []
        for pb in reversed(pullbacks):
            result = pb(g)
            if isinstance(result, tuple):  # a lin: (dx, dw, db)
                g, dw, db = result
                layers.append(Linear(dw, db))
            else:  # a relu
                g = result
        return g, Params(tuple(reversed(layers)))

    return h, pullback


def value(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> float:
    """The loss of the net on (x, y), building the pullbacks as a forward pass does."""
    out, _ = model(params, x)
    return (mse if loss is Loss.mse else cross_entropy)(out, y)[0]


def value_and_grads(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and its gradients, by composing the ops' pullbacks in reverse."""
    out, pb_model = model(params, x, need_x=input_grad, workspace=workspace)
    loss_value, pb_loss = (mse if loss is Loss.mse else cross_entropy)(out, y)
    dx, grads = pb_model(pb_loss(1.0))
    return LossAndGrads(loss_value, grads, dx)
