"""Strategy `tape`: the net written with the primitive ops, differentiated by the tape.

Nothing here knows a derivative: `lin`, `relu`, `mse` and `cross_entropy` are
compositions of `fcgrad.engine.ops` primitives; `fcgrad.engine.autodiff` records them on a tape
and replays it backwards. The tape of a step is recorded once per batch shape and
replayed on every later batch (`fcgrad.engine.replay.cached_vjp`), so that at batch 64 the
bookkeeping of boxes and nodes does not cost as much as the arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine import ops
from fcgrad.engine.replay import CachedVJP, cached_vjp
from fcgrad.nn import losses
from fcgrad.nn.losses import Loss
from fcgrad.nn.model import Params
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
    """-mean over rows of log_softmax(logits) at the label, in nats."""
    losses.check_ce_shapes(logits.shape, y.shape)
    return weighted_log_softmax(logits, label_weights(y, logits.shape[1], logits.dtype))


def label_weights(y: np.ndarray, n_classes: int, dtype: Any) -> np.ndarray:
    """-onehot(y) / N, (N, n_classes): the labels as weights of the log-probabilities.

    Plain numpy, outside the tape: labels are not differentiable.
    """
    weights = losses.onehot(y, n_classes, dtype)
    weights *= -1.0 / y.shape[0]
    return weights


def weighted_log_softmax(logits: Any, weights: Any) -> Any:
    """sum(log_softmax(logits) * weights): cross-entropy, given `label_weights`."""
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


def _mse_objective(x: Any, y: Any, *ws: Any) -> Any:
    return mse(model(Params.from_arrays(ws), x), y)


def _ce_objective(x: Any, weights: Any, *ws: Any) -> Any:
    return weighted_log_softmax(model(Params.from_arrays(ws), x), weights)


# The tapes of the two objectives, recorded once per shape and replayed (`cached_vjp`):
# (loss, input_grad, number of arrays in the params) -> vjp of the objective.
_VJPS: dict[tuple[Loss, bool, int], CachedVJP] = {}


def _vjp(loss: Loss, input_grad: bool, n_arrays: int) -> CachedVJP:
    key = (loss, input_grad, n_arrays)
    if key not in _VJPS:
        f = _mse_objective if loss is Loss.mse else _ce_objective
        argnums = range(0 if input_grad else 2, 2 + n_arrays)
        _VJPS[key] = cached_vjp(f, tuple(i for i in argnums if i != 1))
    return _VJPS[key]


def _target(loss: Loss, params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The objective's second argument: y for mse, `label_weights` for cross-entropy."""
    if loss is Loss.mse:
        return y
    n_classes = params.layers[-1].w.shape[1]
    losses.check_ce_shapes((x.shape[0], n_classes), y.shape)
    return label_weights(y, n_classes, np.result_type(x, *params.arrays()))  # the logits' dtype


def value(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> float:
    """The loss of the net on (x, y), recorded on a tape as a forward pass does."""
    ws = tuple(params.arrays())
    return float(_vjp(loss, False, len(ws)).value(x, _target(loss, params, x, y), *ws))


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

    The tape is recorded on the first call for each shape of x and replayed after
    that (`fcgrad.engine.replay.cached_vjp`); the gradients are identical to a fresh
    `vjp`'s. With a `workspace`, the input gradient is written into its buffer
    (`pullback(..., into=...)`, which matmul's rule honours), as manual and vwc do.
    The pullback runs at once (`value_and_grad`), so no array is held read-only.
    """
    ws = tuple(params.arrays())
    step = _vjp(loss, input_grad, len(ws))
    if not input_grad:
        out, grads = step.value_and_grad(x, _target(loss, params, x, y), *ws)
        return LossAndGrads(float(out), Params.from_arrays(grads), None)
    into = {0: workspace.buffer("input gradient", x.shape, x.dtype)} if workspace else None
    out, (dx, *dws) = step.value_and_grad(x, _target(loss, params, x, y), *ws, into=into)
    return LossAndGrads(float(out), Params.from_arrays(dws), dx)
