"""Strategy `manual`: hand-written gradients stored on tensors (the lesson's first version).

Each rule `*_grad(inp, out, ...)` reads `out.grad` (the cotangent of the layer's
output) and fills `.grad` of the layer's inputs, exactly as the lesson derives them by
hand. One row per kind, in three tables:

- `LAYERS["dense"]`, `lin_grad`: for out = inp @ w + b: inp.grad = out.grad @ w.T,
  w.grad = inp.T @ out.grad, b.grad = out.grad summed over rows;
- `ACTIVATIONS`: relu: out.grad * (inp > 0) (0 at exactly 0); leaky-relu: out.grad
  where inp > 0, else slope * out.grad (slope at exactly 0); tanh: out.grad * (1 -
  out^2); sigmoid: out.grad * out * (1 - out);
- `LOSSES`: mse, for loss = mean((inp[:, 0] - targ)**2): inp.grad = 2 (inp - targ) / N;
  cross-entropy, for loss = -mean(log_softmax(inp)[targ]): (softmax - onehot) / N. A loss
  rule also returns the loss's value, from what it computed for the gradient anyway (the
  differences, the log-softmax), so that a step computes it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops
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

NAME = "manual"


class Tensor:
    """A value and, after the backward pass, the gradient of the loss with respect to it."""

    __slots__ = ("grad", "value")

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.grad: Any = None  # an array of value's shape once the backward pass has run


# ----------------------------------------------------------------------------- layers


def lin(x: np.ndarray, p: Linear) -> np.ndarray:
    """x @ w + b."""
    out: np.ndarray = ops.add(ops.matmul(x, p.w), p.b)
    return out


def lin_grad(
    inp: Tensor,
    out: Tensor,
    w: Tensor,
    b: Tensor,
    *,
    input_grad: bool = True,
    into: np.ndarray | None = None,
    grads_into: Linear | None = None,
) -> None:
    """Fill inp.grad (unless `input_grad` is False; written `into` a given buffer), w.grad
    and b.grad from out.grad (written into `grads_into`'s arrays when given)."""
    if input_grad:
        inp.grad = np.matmul(out.grad, w.value.T, out=into)
    w.grad = np.matmul(inp.value.T, out.grad, out=grads_into.w if grads_into else None)
    b.grad = np.add.reduce(out.grad, axis=0, out=grads_into.b if grads_into else None)


LAYERS: dict[str, tuple[Callable[[np.ndarray, Linear], np.ndarray], Callable[..., None]]] = {
    "dense": (lin, lin_grad),
}

# ----------------------------------------------------------------------------- activations


def relu_grad(inp: Tensor, out: Tensor) -> None:
    """Fill inp.grad = out.grad where inp > 0, else 0."""
    inp.grad = out.grad * (inp.value > 0)


def leaky_relu_grad(inp: Tensor, out: Tensor) -> None:
    """Fill inp.grad = out.grad where inp > 0, else slope * out.grad."""
    inp.grad = out.grad * np.where(inp.value > 0, 1.0, ops.LEAKY_SLOPE).astype(inp.value.dtype)


def tanh_grad(inp: Tensor, out: Tensor) -> None:
    """Fill inp.grad = out.grad * (1 - tanh(inp)^2), from the output."""
    inp.grad = out.grad * (1.0 - np.square(out.value))


def sigmoid_grad(inp: Tensor, out: Tensor) -> None:
    """Fill inp.grad = out.grad * s * (1 - s), s = sigmoid(inp) the output."""
    inp.grad = out.grad * out.value * (1.0 - out.value)


ActivationRule = tuple[Callable[[np.ndarray], np.ndarray], Callable[[Tensor, Tensor], None]]
ACTIVATIONS: dict[Activation, ActivationRule] = {
    Activation.relu: (ops.relu, relu_grad),
    Activation.leaky_relu: (ops.leaky_relu, leaky_relu_grad),
    Activation.tanh: (ops.tanh, tanh_grad),
    Activation.sigmoid: (ops.sigmoid, sigmoid_grad),
}

# ----------------------------------------------------------------------------- losses


def mse_grad(inp: Tensor, targ: np.ndarray) -> float:
    """Fill inp.grad for the mean squared error of inp (N, 1) against targ (N,); return
    the error."""
    losses.check_mse_shapes(inp.value.shape, targ.shape)
    diff = inp.value - targ[:, None]
    inp.grad = (2.0 / targ.shape[0]) * diff
    return float(ops.mean(np.square(diff)))


def cross_entropy_grad(inp: Tensor, targ: np.ndarray) -> float:
    """Fill inp.grad = (softmax(inp) - onehot(targ)) / N for logits inp (N, C); return the
    cross-entropy in nats."""
    losses.check_ce_shapes(inp.value.shape, targ.shape)
    rows = np.arange(targ.shape[0])
    logp = ops.log_softmax(inp.value)
    value = float(-ops.mean(logp[rows, targ]))
    p = np.exp(logp, out=logp)
    p[rows, targ] -= 1
    p *= 1.0 / targ.shape[0]
    inp.grad = p
    return value


LOSSES: dict[Loss, Callable[[Tensor, np.ndarray], float]] = {
    Loss.mse: mse_grad,
    Loss.cross_entropy: cross_entropy_grad,
}

# ----------------------------------------------------------------------------- the net

Step = tuple[Tensor, Tensor, Any, tuple[Tensor, Tensor] | None]  # inp, out, rule, (w, b)


def _forward(net: Net, params: Params, x: np.ndarray) -> list[Step]:
    """Run the net, keeping every layer's input, output, rule and parameter tensors."""
    steps: list[Step] = []
    h = Tensor(x)
    for layer, p in net.walk(params):
        if isinstance(layer, Act):
            act, act_grad = row(ACTIVATIONS, layer.activation, NAME)
            steps.append((h, Tensor(act(h.value)), act_grad, None))
        elif p is not None:
            fwd, grad = row(LAYERS, layer.kind, NAME)
            steps.append((h, Tensor(fwd(h.value, p)), grad, (Tensor(p.w), Tensor(p.b))))
        h = steps[-1][1]
    return steps


def value(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of the net on (x, y): the forward pass only."""
    return losses.value(net.loss, _forward(net, params, x)[-1][1].value, y)


def value_and_grads(
    net: Net,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and, by the hand-written rules, every parameter's gradient (and x's if asked;
    into the workspace's buffers when one is given)."""
    steps = _forward(net, params, x)
    loss_value = row(LOSSES, net.loss, NAME)(steps[-1][1], y)
    dest = gradient_buffers(workspace, params, x)
    grads: list[Linear] = []
    for i in range(len(steps) - 1, -1, -1):
        inp, out, grad, wb = steps[i]
        need = input_grad or i > 0
        if wb is None:
            if need:
                grad(inp, out)
            continue
        into = input_buffer(workspace, out.grad, wb[0].value) if i == 0 and input_grad else None
        grads_into = dest.layers[-1 - len(grads)] if dest else None
        grad(inp, out, *wb, input_grad=need, into=into, grads_into=grads_into)
        grads.append(Linear(wb[0].grad, wb[1].grad))
    dx = steps[0][0].grad if input_grad else None
    return LossAndGrads(loss_value, Params(tuple(reversed(grads))), dx)
