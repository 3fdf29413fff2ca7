"""The same workload in other libraries, for `fcgrad bench --compare torch,jax,autograd`.

Each peer builds, from the same parameters and data, callables for the phases that
`fcgrad.bench.timing` times: the forward pass, forward+backward with every gradient (the
input's included), and forward+backward for the weights only; and, for training
throughput, one SGD epoch at a given batch size. None of these libraries is a
dependency: install them with the `peers` extra (`pip install 'fcgrad[peers]'`;
`torch==2.13.0` is the CPU build on these machines).

- numpy: the lesson's net written out by hand in plain numpy (no install needed).
- torch: eager mode, `torch.autograd.grad`, its default intra-op threads.
- jax: `jax.jit` of `jax.value_and_grad`, results awaited with `block_until_ready`.
- autograd: HIPS autograd's `value_and_grad` over numpy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.errors import ConfigError
from fcgrad.nn.losses import Loss
from fcgrad.nn.model import Params

PEERS = ("numpy", "torch", "jax", "autograd")

Phases = dict[str, Callable[[], object]]


def check_available(names: tuple[str, ...]) -> None:
    """Raise ConfigError naming the first peer that is unknown or not installed."""
    for name in names:
        if name not in PEERS:
            raise ConfigError(f"--compare {name!r}: choose from {', '.join(PEERS)}")
        if name != "numpy" and importlib.util.find_spec(name) is None:
            raise ConfigError(
                f"--compare {name}: {name} is not installed (pip install 'fcgrad[peers]')"
            )


def phases(name: str, params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Phases:
    """{'forward', 'fwd+bwd all', 'fwd+bwd weights'} -> a callable, for peer `name`."""
    makers = {"numpy": _numpy, "torch": _torch, "jax": _jax, "autograd": _autograd}
    return makers[name](params, x, y, loss)


# ----------------------------------------------------------------------------- numpy


def _numpy(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Phases:
    """The lesson's forward and backward written out in plain numpy, fresh arrays each call."""
    ws = [(layer.w, layer.b) for layer in params.layers]

    def run(backward: bool, input_grad: bool) -> object:
        acts, pre = [x], []
        for i, (w, b) in enumerate(ws):
            pre.append(acts[-1] @ w + b)
            if i < len(ws) - 1:
                acts.append(np.maximum(pre[-1], 0))
        out = pre[-1]
        if loss is Loss.mse:
            diff = out[:, 0] - y
            value, g = float(np.mean(diff * diff)), (2.0 / y.shape[0]) * diff[:, None]
        else:
            shifted = out - out.max(axis=1, keepdims=True)
            p = np.exp(shifted)
            p /= p.sum(axis=1, keepdims=True)
            rows = np.arange(y.shape[0])
            value = float(-np.mean(np.log(p[rows, y])))
            p[rows, y] -= 1
            g = p / y.shape[0]
        if not backward:
            return value
        grads = []
        for i in range(len(ws) - 1, -1, -1):
            grads += [acts[i].T @ g, g.sum(axis=0)]
            if i > 0 or input_grad:
                g = g @ ws[i][0].T
            if i > 0:
                g = g * (pre[i - 1] > 0)
        return value, grads, g

    return {
        "forward": lambda: run(False, False),
        "fwd+bwd all": lambda: run(True, True),
        "fwd+bwd weights": lambda: run(True, False),
    }


# ----------------------------------------------------------------------------- torch


def _torch_tensors(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Any:
    import torch

    ws = [torch.from_numpy(np.array(a)).requires_grad_() for a in params.arrays()]
    ty = torch.from_numpy(y if loss is Loss.mse else y.astype(np.int64))
    return torch, ws, torch.from_numpy(x), ty


def _torch_loss(torch: Any, ws: list[Any], x: Any, y: Any, loss: Loss) -> Any:
    h = x
    for i in range(0, len(ws), 2):
        h = h @ ws[i] + ws[i + 1]
        if i + 2 < len(ws):
            h = torch.relu(h)
    if loss is Loss.mse:
        return ((h.squeeze(-1) - y) ** 2).mean()
    return torch.nn.functional.cross_entropy(h, y)


def _torch(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Phases:
    torch, ws, tx, ty = _torch_tensors(params, x, y, loss)
    tx_grad = tx.clone().requires_grad_()

    def forward() -> object:
        with torch.no_grad():
            return _torch_loss(torch, ws, tx, ty, loss)

    def all_grads() -> object:
        return torch.autograd.grad(_torch_loss(torch, ws, tx_grad, ty, loss), [*ws, tx_grad])

    def weights() -> object:
        return torch.autograd.grad(_torch_loss(torch, ws, tx, ty, loss), ws)

    return {"forward": forward, "fwd+bwd all": all_grads, "fwd+bwd weights": weights}


def torch_epoch(
    params: Params, x: np.ndarray, y: np.ndarray, loss: Loss, batch_size: int, lr: float, seed: int
) -> Callable[[], object]:
    """One epoch of shuffled mini-batch SGD in PyTorch eager, as `fcgrad.training.train` runs it."""
    torch, ws, tx, ty = _torch_tensors(params, x, y, loss)

    def epoch() -> object:
        order = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]
            grads = torch.autograd.grad(_torch_loss(torch, ws, tx[idx], ty[idx], loss), ws)
            with torch.no_grad():
                for w, g in zip(ws, grads):
                    w -= lr * g
        return None

    return epoch


# ----------------------------------------------------------------------------- jax


def _jax(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Phases:
    import jax
    import jax.numpy as jnp

    def f(ws: list[Any], xx: Any) -> Any:
        h = xx
        for i in range(0, len(ws), 2):
            h = h @ ws[i] + ws[i + 1]
            if i + 2 < len(ws):
                h = jax.nn.relu(h)
        if loss is Loss.mse:
            return jnp.mean((h[:, 0] - y) ** 2)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None].astype(np.int32), axis=1))

    ws = [jnp.asarray(a) for a in params.arrays()]
    jx = jnp.asarray(x)
    fwd = jax.jit(f)
    both = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    only_w = jax.jit(jax.value_and_grad(f, argnums=0))
    return {
        "forward": lambda: fwd(ws, jx).block_until_ready(),
        "fwd+bwd all": lambda: jax.block_until_ready(both(ws, jx)),
        "fwd+bwd weights": lambda: jax.block_until_ready(only_w(ws, jx)),
    }


# ----------------------------------------------------------------------------- HIPS autograd


def _autograd(params: Params, x: np.ndarray, y: np.ndarray, loss: Loss) -> Phases:
    import autograd
    import autograd.numpy as anp

    def f(ws: list[Any], xx: Any) -> Any:
        h = xx
        for i in range(0, len(ws), 2):
            h = anp.dot(h, ws[i]) + ws[i + 1]
            if i + 2 < len(ws):
                h = anp.maximum(h, 0.0)
        if loss is Loss.mse:
            return anp.mean((h[:, 0] - y) ** 2)
        shifted = h - anp.max(h, axis=1, keepdims=True)
        logp = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(logp[np.arange(y.shape[0]), y.astype(np.int64)])

    ws = [np.array(a) for a in params.arrays()]
    all_grads = autograd.value_and_grad(lambda wx: f(wx[0], wx[1]))  # one backward pass for both
    weights = autograd.value_and_grad(f, argnum=0)
    return {
        "forward": lambda: f(ws, x),
        "fwd+bwd all": lambda: all_grads((ws, x)),
        "fwd+bwd weights": lambda: weights(ws, x),
    }
