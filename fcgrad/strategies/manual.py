"""Strategy `manual`: hand-written gradients stored on tensors (the lesson's first version).

Each function `*_grad(inp, out, ...)` reads `out.grad` (the cotangent of the
layer's output) and fills `.grad` of the layer's inputs, exactly as the lesson
derives them by hand:

- `lin_grad`:  for out = inp @ w + b: inp.grad = out.grad @ w.T,
  w.grad = inp.T @ out.grad, b.grad = out.grad summed over rows;
- `relu_grad`: inp.grad = out.grad * (inp > 0) (0 at exactly 0);
- `mse_grad`:  for loss = mean((inp[:, 0] - targ)**2): inp.grad = 2 (inp - targ) / N;
- `cross_entropy_grad`: for loss = -mean(log_softmax(inp)[targ]): (softmax - onehot) / N.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine import ops
from fcgrad.nn import losses
from fcgrad.nn.losses import Loss
from fcgrad.nn.model import Linear, Params
from fcgrad.strategies import LossAndGrads, Workspace, input_buffer


class Tensor:
    """A value and, after the backward pass, the gradient of the loss with respect to it."""

    __slots__ = ("grad", "value")

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.grad: Any = None  # an array of value's shape once the backward pass has run


def lin_grad(
    inp: Tensor,
    out: Tensor,
    w: Tensor,
    b: Tensor,
    *,
    input_grad: bool = True,
    into: np.ndarray | None = None,
) -> None:
    """Fill inp.grad (unless `input_grad` is False; written `into` a given buffer), w.grad
    and b.grad from out.grad."""
    if input_grad:
        inp.grad = np.matmul(out.grad, w.value.T, out=into)
    w.grad = inp.value.T @ out.grad
    b.grad = out.grad.sum(axis=0)


def relu_grad(inp: Tensor, out: Tensor) -> None:
    """Fill inp.grad = out.grad where inp > 0, else 0."""
    inp.grad = out.grad * (inp.value > 0)


def mse_grad(inp: Tensor, targ: np.ndarray) -> None:
    """Fill inp.grad for the mean squared error of inp (N, 1) against targ (N,)."""
    losses.check_mse_shapes(inp.value.shape, targ.shape)
    inp.grad = (2.0 / targ.shape[0]) * (inp.value - targ[:, None])


def cross_entropy_grad(inp: Tensor, targ: np.ndarray) -> None:
    """Fill inp.grad = (softmax(inp) - onehot(targ)) / N for logits inp (N, C)."""
    losses.check_ce_shapes(inp.value.shape, targ.shape)
    p = np.exp(ops.log_softmax(inp.value))
    p[np.arange(targ.shape[0]), targ] -= 1
    inp.grad = p / targ.shape[0]


def _forward(params: Params, x: np.ndarray) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Run the net, keeping every layer's (input, output, w, b) for the backward pass.

    A ReLU sits between a layer's output and the next layer's input, so the
    input of layer i+1 is relu(output of layer i).
    """
    records: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    h = Tensor(x)
    for i, layer in enumerate(params.layers):
        if i:
            h = Tensor(ops.relu(records[-1][1].value))
        w, b = Tensor(layer.w), Tensor(layer.b)
        out = Tensor(ops.add(ops.matmul(h.value, w.value), b.value))
        records.append((h, out, w, b))
    return records


def value(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> float:
    """The loss of the net on (x, y): the forward pass only."""
    return losses.value(loss, _forward(params, x)[-1][1].value, y)


def value_and_grads(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    *,
    input_grad: bool = False,
    workspace: Workspace | None = None,
) -> LossAndGrads:
    """The loss and, by the hand-written rules, every parameter's gradient (and x's if asked;
    into the workspace's buffer when one is given)."""
    records = _forward(params, x)
    out = records[-1][1]
    loss_value = losses.value(loss, out.value, y)
    (mse_grad if loss is Loss.mse else cross_entropy_grad)(out, y)
    for i in range(len(records) - 1, -1, -1):
        inp, out, w, b = records[i]
        into = input_buffer(workspace, out.grad, w.value) if i == 0 and input_grad else None
        lin_grad(inp, out, w, b, input_grad=input_grad or i > 0, into=into)
        if i > 0:
            relu_grad(records[i - 1][1], inp)
    grads = Params(tuple(Linear(w.grad, b.grad) for _, _, w, b in records))
    return LossAndGrads(loss_value, grads, records[0][0].grad if input_grad else None)
