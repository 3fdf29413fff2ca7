"""Strategy `tape`: the net written with the primitive ops, differentiated by the tape.

Nothing here knows a derivative: one op composition per kind, in three tables
(`LAYERS`: dense = `lin`; `ACTIVATIONS`: the activation primitives; `LOSSES`: `mse` and
`weighted_log_softmax`), written with `fcgrad.engine.ops` primitives, which
`fcgrad.engine.autodiff` records on a tape and replays backwards. The tape of a step is
recorded once per net and batch shape and replayed on every later batch
(`fcgrad.engine.replay.cached_vjp`), so that at batch 64 the bookkeeping of boxes and
nodes does not cost as much as the arithmetic.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops
from fcgrad.engine.replay import CachedVJP, cached_vjp
from fcgrad.nn import losses
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Act, Net
from fcgrad.nn.params import Params
from fcgrad.strategies.base import LossAndGrads, Workspace, row

NAME = "tape"


def lin(x: Any, w: Any, b: Any) -> Any:
    """x @ w + b."""
    return ops.add(ops.matmul(x, w), b)


def relu(x: Any) -> Any:
    """max(x, 0)."""
    return ops.relu(x)


LAYERS: dict[str, Callable[[Any, Any, Any], Any]] = {"dense": lin}
ACTIVATIONS: dict[Activation, Callable[[Any], Any]] = {
    Activation.relu: relu,
    Activation.leaky_relu: ops.leaky_relu,
    Activation.tanh: ops.tanh,
    Activation.sigmoid: ops.sigmoid,
}


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

    Plain numpy, outside the tape: labels are not differentiable. The rows of y are taken
    from one cached table, -identity / N (one numpy call a step instead of four).
    """
    if y.dtype.kind not in "iu":  # (take would read booleans as rows 0 and 1)
        raise IndexError(f"cross-entropy labels must be integers, got {y.dtype}")
    return _scaled_identity(n_classes, y.shape[0], np.dtype(dtype)).take(y, axis=0)


@functools.lru_cache(maxsize=64)
def _scaled_identity(n_classes: int, n: int, dtype: np.dtype) -> np.ndarray:
    """-identity(n_classes) / n in `dtype`, read-only: row k is -onehot(k) / n."""
    table = np.eye(n_classes, dtype=dtype)
    table *= -1.0 / n
    table.flags.writeable = False
    return table


def weighted_log_softmax(logits: Any, weights: Any) -> Any:
    """sum(log_softmax(logits) * weights): cross-entropy, given `label_weights`."""
    return ops.sum(ops.mul(ops.log_softmax(logits), weights))


def _label_weights(params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n_classes = params.layers[-1].w.shape[1]
    losses.check_ce_shapes((x.shape[0], n_classes), y.shape)
    return label_weights(y, n_classes, np.result_type(x, *params.arrays()))  # the logits' dtype


@dataclasses.dataclass(frozen=True)
class TapeLoss:
    """A loss as the tape's objective: `target(params, x, y)` makes its second argument
    outside the tape (plain numpy), `objective(out, target)` is recorded."""

    target: Callable[[Params, np.ndarray, np.ndarray], np.ndarray]
    objective: Callable[[Any, Any], Any]


LOSSES: dict[Loss, TapeLoss] = {
    Loss.mse: TapeLoss(lambda params, x, y: y, mse),
    Loss.cross_entropy: TapeLoss(_label_weights, weighted_log_softmax),
}


def model(net: Net, params: Params, x: Any) -> Any:
    """The net's output (N, n_out)."""
    h = x
    for layer, p in net.walk(params):
        if isinstance(layer, Act):
            h = row(ACTIVATIONS, layer.activation, NAME)(h)
        elif p is not None:
            h = row(LAYERS, layer.kind, NAME)(h, p.w, p.b)
    return h


# The tapes of the objectives, recorded once per shape and replayed (`cached_vjp`):
# (net, input_grad) -> vjp of (x, target, *weights) -> loss.
_VJPS: dict[tuple[Net, bool], CachedVJP] = {}


def _vjp(net: Net, input_grad: bool) -> CachedVJP:
    key = (net, input_grad)
    if key not in _VJPS:
        objective = row(LOSSES, net.loss, NAME).objective

        def f(x: Any, target: Any, *ws: Any) -> Any:
            return objective(model(net, Params.from_arrays(ws), x), target)

        n_arrays = 2 * len(net.dense)
        argnums = range(0 if input_grad else 2, 2 + n_arrays)
        _VJPS[key] = cached_vjp(f, tuple(i for i in argnums if i != 1))
    return _VJPS[key]


def _target(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The objective's second argument: y for mse, `label_weights` for cross-entropy."""
    return row(LOSSES, net.loss, NAME).target(params, x, y)


def value(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of the net on (x, y), recorded on a tape as a forward pass does."""
    net.check(params)
    ws = tuple(params.arrays())
    return float(_vjp(net, False).value(x, _target(net, params, x, y), *ws))


def value_and_grads(
    net: Net,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and its gradients, by replaying the tape backwards from the loss.

    The tape is recorded on the first call for each net and shape of x and replayed
    after that (`fcgrad.engine.replay.cached_vjp`); the gradients are identical to a
    fresh `vjp`'s. With a `workspace`, the input gradient is written into its buffer
    (`pullback(..., into=...)`, which matmul's rule honours), as manual and vwc do.
    The pullback runs at once (`value_and_grad`), so no array is held read-only.
    """
    net.check(params)
    ws = tuple(params.arrays())
    step = _vjp(net, input_grad)
    target = _target(net, params, x, y)
    if not input_grad:
        # (the workspace's packed gradient buffers are not used: checking `into` against
        # every input costs a step more than the packed update saves)
        out, grads = step.value_and_grad(x, target, *ws)
        return LossAndGrads(float(out), Params.from_arrays(grads), None)
    into = {0: workspace.buffer("input gradient", x.shape, x.dtype)} if workspace else None
    out, (dx, *dws) = step.value_and_grad(x, target, *ws, into=into)
    return LossAndGrads(float(out), Params.from_arrays(dws), dx)
