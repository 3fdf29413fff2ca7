"""Strategy `tape`: the net written with the primitive ops, differentiated by the tape.

Nothing here knows a derivative: `lin`, `relu`, `mse` and `cross_entropy` are
compositions of `fcgrad.ops` primitives, and `fcgrad.autodiff.vjp` records them
and replays the tape backwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad import losses, ops
from fcgrad.autodiff import vjp
from fcgrad.losses import Loss
from fcgrad.model import Params
from fcgrad.strategies import LossAndGrads, Workspace


def lin(x: Any, w: Any, b: Any) -> Any:
    """x @ w + b."""
    return ops.add(ops.matmul(x, w), b)


def relu(x: Any) -> Any:
    """max(x, 0)."""
    return ops.relu(x)


def mse(out: Any, y: np.ndarray) -> Any:
    """mean((squeeze(out, -1) - y) ** 2); out must be (N, 1) and y (N,)."""
    losses.check_mse_shapes(out.shape, y.shape)
    return ops.mean(ops.square(ops.sub(ops.squeeze(out, -1), y)))


def cross_entropy(logits: Any, y: np.ndarray) -> Any:
    """-mean over rows of log_softmax(logits) at the label, in nats:
    sum(log_softmax(logits) * (-onehot(y) / N))."""
    losses.check_ce_shapes(logits.shape, y.shape)
    weights = losses.onehot(y, logits.shape[1], logits.dtype)
    weights *= -1.0 / y.shape[0]
    return ops.sum(ops.mul(ops.log_softmax(logits), weights))


def model(params: Params, x: Any) -> Any:
    """The net's output (N, n_out)."""
    h = x
    last = len(params.layers) - 1
    for i, layer in enumerate(params.layers):
        h = lin(h, layer.w, layer.b)
        if i < last:
            h = relu(h)
    return h


def _objective(loss: Loss, y: np.ndarray) -> Any:
    fn = mse if loss is Loss.mse else cross_entropy
    return lambda params, x: fn(model(params, x), y)


def value(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> float:
    """The loss of the net on (x, y), recorded on a tape as a forward pass does."""
    f = _objective(loss, y)
    return float(vjp(lambda *ws: f(Params.from_arrays(ws), x), *params.arrays())[0])


def value_and_grads(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and its gradients, by replaying the tape backwards from the loss.

    With a `workspace`, the input gradient is written into its buffer (`pullback(...,
    into=...)`, which matmul's rule honours), as manual and vwc do.

    The parameters go to `vjp` as a flat list of arrays (w1, b1, ...), which saves
    flattening the `Params` pytree on every step; `vjp(f, params)` gives the same.
    """
    f = _objective(loss, y)
    ws = list(params.arrays())
    if input_grad:
        out, pullback = vjp(lambda x, *ws: f(Params.from_arrays(ws), x), x, *ws)
        into = {0: workspace.buffer("input gradient", x.shape, x.dtype)} if workspace else None
        dx, *grads = pullback(np.ones_like(out), into=into)
        return LossAndGrads(float(out), Params.from_arrays(grads), dx)
    out, pullback = vjp(lambda *ws: f(Params.from_arrays(ws), x), *ws)
    return LossAndGrads(float(out), Params.from_arrays(pullback(np.ones_like(out))), None)
