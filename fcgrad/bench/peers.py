"""The same workload in other libraries, for `fcgrad bench --compare torch,jax,autograd`.

Each peer builds, from the same net description, parameters and data, callables for
the phases that `fcgrad.bench.timing` times: the forward pass, forward+backward with
every gradient (the input's included), and forward+backward for the weights only; and,
for training throughput, one SGD epoch at a given batch size. Each peer writes every
activation and loss of the description in its own library, one row per kind (a test
finds a missing row). None of these libraries is a dependency: install them with the
`peers` extra (`pip install 'fcgrad[peers]'`; `torch==2.13.0` is the CPU build).

- numpy: the net written out by hand in plain numpy (no install needed).
- torch: eager mode, `torch.autograd.grad`, its default intra-op threads.
- jax: `jax.jit` of `jax.value_and_grad`, results awaited with `block_until_ready`;
  its epochs two ways (`jax_epochs`): one `lax.scan` (`jax scan`) and a step per batch
  (`jax step`).
- autograd: HIPS autograd's `value_and_grad` over numpy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fcgrad.engine.ops import LEAKY_SLOPE
from fcgrad.errors import ConfigError
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Act, Net
from fcgrad.nn.params import Params

PEERS = ("numpy", "torch", "jax", "autograd")

Phases = dict[str, Callable[[], object]]


def check_available(names: tuple[str, ...]) -> None:
    """Raise ConfigError (param `compare`) naming the first peer unknown or not installed."""
    for name in names:
        if name not in PEERS:
            raise ConfigError(f"compare {name!r}: choose from {', '.join(PEERS)}", param="compare")
        if name != "numpy" and importlib.util.find_spec(name) is None:
            raise ConfigError(
                f"compare {name}: {name} is not installed (pip install 'fcgrad[peers]')",
                param="compare",
            )


def phases(name: str, net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Phases:
    """{'forward', 'fwd+bwd all', 'fwd+bwd weights'} -> a callable, for peer `name`."""
    makers = {"numpy": _numpy, "torch": _torch, "jax": _jax, "autograd": _autograd}
    return makers[name](net, params, x, y)


def _mlp(net: Net, ws: list[Any], x: Any, acts: dict[Activation, Callable[[Any], Any]]) -> Any:
    """The net's output in a peer's library: `ws` is w1, b1, w2, ...; `acts` its activations."""
    h, it = x, iter(ws)
    for layer in net.layers:
        h = acts[layer.activation](h) if isinstance(layer, Act) else h @ next(it) + next(it)
    return h


# ----------------------------------------------------------------------------- numpy

# activation -> (forward z -> a, derivative (z, a) -> da/dz)
NUMPY_ACTIVATIONS: dict[Activation, tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    Activation.relu: (lambda z: np.maximum(z, 0), lambda z, a: z > 0),
    Activation.leaky_relu: (
        lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
        lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
    ),
    Activation.tanh: (np.tanh, lambda z, a: 1.0 - a * a),
    Activation.sigmoid: (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, a: a * (1.0 - a)),
}


def _numpy_mse(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    diff = out[:, 0] - y
    return float(np.mean(diff * diff)), (2.0 / y.shape[0]) * diff[:, None]


def _numpy_ce(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    p = np.exp(out - out.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(y.shape[0])
    value = float(-np.mean(np.log(p[rows, y])))
    p[rows, y] -= 1
    return value, p / y.shape[0]


# loss -> (out, y) -> (value, d value / d out)
NUMPY_LOSSES: dict[Loss, Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]] = {
    Loss.mse: _numpy_mse,
    Loss.cross_entropy: _numpy_ce,
}


def _numpy(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Phases:
    """The net's forward and backward written out in plain numpy, fresh arrays each call."""
    ws = [(layer.w, layer.b) for layer in params.layers]
    kinds = [la.activation for la in net.layers if isinstance(la, Act)]
    loss = NUMPY_LOSSES[net.loss]

    def run(backward: bool, input_grad: bool) -> object:
        acts, pre = [x], []
        for i, (w, b) in enumerate(ws):
            pre.append(acts[-1] @ w + b)
            if i < len(kinds):
                acts.append(NUMPY_ACTIVATIONS[kinds[i]][0](pre[-1]))
        value, g = loss(pre[-1], y)
        if not backward:
            return value
        grads = []
        for i in range(len(ws) - 1, -1, -1):
            grads += [acts[i].T @ g, g.sum(axis=0)]
            if i > 0 or input_grad:
                g = g @ ws[i][0].T
            if i > 0:
                g = g * NUMPY_ACTIVATIONS[kinds[i - 1]][1](pre[i - 1], acts[i])
        return value, grads, g

    return {
        "forward": lambda: run(False, False),
        "fwd+bwd all": lambda: run(True, True),
        "fwd+bwd weights": lambda: run(True, False),
    }


# ----------------------------------------------------------------------------- torch


def torch_activations(torch: Any) -> dict[Activation, Callable[[Any], Any]]:
    """Each activation in torch."""
    f = torch.nn.functional
    return {
        Activation.relu: torch.relu,
        Activation.leaky_relu: lambda h: f.leaky_relu(h, LEAKY_SLOPE),
        Activation.tanh: torch.tanh,
        Activation.sigmoid: torch.sigmoid,
    }


def torch_losses(torch: Any) -> dict[Loss, Callable[[Any, Any], Any]]:
    """Each loss in torch: (out, y) -> scalar."""
    return {
        Loss.mse: lambda h, y: ((h.squeeze(-1) - y) ** 2).mean(),
        Loss.cross_entropy: torch.nn.functional.cross_entropy,
    }


def _torch_setup(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Any:
    import torch

    ws = [torch.from_numpy(np.array(a)).requires_grad_() for a in params.arrays()]
    ty = torch.from_numpy(y if net.loss is Loss.mse else y.astype(np.int64))
    acts, loss = torch_activations(torch), torch_losses(torch)[net.loss]

    def f(ws: list[Any], xx: Any, yy: Any) -> Any:
        return loss(_mlp(net, ws, xx, acts), yy)

    return torch, ws, torch.from_numpy(x), ty, f


def _torch(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Phases:
    torch, ws, tx, ty, f = _torch_setup(net, params, x, y)
    tx_grad = tx.clone().requires_grad_()

    def forward() -> object:
        with torch.no_grad():
            return f(ws, tx, ty)

    def all_grads() -> object:
        return torch.autograd.grad(f(ws, tx_grad, ty), [*ws, tx_grad])

    def weights() -> object:
        return torch.autograd.grad(f(ws, tx, ty), ws)

    return {"forward": forward, "fwd+bwd all": all_grads, "fwd+bwd weights": weights}


def torch_epoch(
    net: Net, params: Params, x: np.ndarray, y: np.ndarray, batch_size: int, lr: float, seed: int
) -> Callable[[], object]:
    """One epoch of shuffled mini-batch SGD in PyTorch eager, as `fcgrad.training` runs it."""
    torch, ws, tx, ty, f = _torch_setup(net, params, x, y)

    def epoch() -> object:
        order = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]
            grads = torch.autograd.grad(f(ws, tx[idx], ty[idx]), ws)
            with torch.no_grad():
                for w, g in zip(ws, grads):
                    w -= lr * g
        return None

    return epoch


# ----------------------------------------------------------------------------- jax


def _jax_loss(net: Net) -> tuple[Any, Callable[[list[Any], Any, Any], Any]]:
    """jax, and the net's loss in it: (ws, x, y) -> scalar (y: float digits or int labels)."""
    import jax
    import jax.numpy as jnp

    acts: dict[Activation, Callable[[Any], Any]] = {
        Activation.relu: jax.nn.relu,
        Activation.leaky_relu: lambda h: jax.nn.leaky_relu(h, LEAKY_SLOPE),
        Activation.tanh: jnp.tanh,
        Activation.sigmoid: jax.nn.sigmoid,
    }
    losses: dict[Loss, Callable[[Any, Any], Any]] = {
        Loss.mse: lambda h, y: jnp.mean((h[:, 0] - y) ** 2),
        Loss.cross_entropy: lambda h, y: (
            -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1))
        ),
    }

    def f(ws: list[Any], xx: Any, yy: Any) -> Any:
        return losses[net.loss](_mlp(net, ws, xx, acts), yy)

    return jax, f


def _jax_labels(net: Net, y: np.ndarray) -> np.ndarray:
    return y if net.loss is Loss.mse else y.astype(np.int32)


def _jax(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Phases:
    jax, f = _jax_loss(net)
    ws = [jax.numpy.asarray(a) for a in params.arrays()]
    jx, jy = jax.numpy.asarray(x), jax.numpy.asarray(_jax_labels(net, y))
    fwd = jax.jit(f)
    both = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    only_w = jax.jit(jax.value_and_grad(f, argnums=0))
    ready: Callable[[object], object] = jax.block_until_ready
    return {
        "forward": lambda: ready(fwd(ws, jx, jy)),
        "fwd+bwd all": lambda: ready(both(ws, jx, jy)),
        "fwd+bwd weights": lambda: ready(only_w(ws, jx, jy)),
    }


def jax_epochs(
    net: Net, params: Params, x: np.ndarray, y: np.ndarray, batch_size: int, lr: float, seed: int
) -> dict[str, Callable[[], object]]:
    """One epoch of shuffled mini-batch SGD in JAX, two ways: `jax scan`, the whole epoch
    one jitted `lax.scan` over the batches (each gathered inside it with `jnp.take`; a
    last partial batch after it), and `jax step`, a jitted step called once per batch
    gathered in numpy, as `fcgrad.training` runs it. The first call of each compiles."""
    jax, f = _jax_loss(net)
    jnp = jax.numpy
    ws0 = [jnp.asarray(a) for a in params.arrays()]
    jx, labels = jnp.asarray(x), _jax_labels(net, y)
    jy = jnp.asarray(labels)
    grad = jax.value_and_grad(f)

    def sgd(ws: list[Any], xb: Any, yb: Any) -> tuple[list[Any], Any]:
        loss, gs = grad(ws, xb, yb)
        return [w - lr * g for w, g in zip(ws, gs)], loss

    step = jax.jit(sgd)

    def body(ws: list[Any], idx: Any) -> tuple[list[Any], Any]:
        return sgd(ws, jnp.take(jx, idx, axis=0), jnp.take(jy, idx, axis=0))

    scanned = jax.jit(lambda ws, batches: jax.lax.scan(body, ws, batches))

    n = x.shape[0]
    order = np.random.default_rng(seed).permutation(n).astype(np.int32)
    whole = n // batch_size * batch_size
    batches = jnp.asarray(order[:whole].reshape(-1, batch_size))
    rest = order[whole:]

    def scan_epoch() -> object:
        ws, _ = scanned(ws0, batches)
        if rest.size:
            ws, _ = step(ws, jx[rest], jy[rest])
        return jax.block_until_ready(ws)

    def step_epoch() -> object:
        ws = ws0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            ws, _ = step(ws, x[idx], labels[idx])
        return jax.block_until_ready(ws)

    return {"jax scan": scan_epoch, "jax step": step_epoch}


# ----------------------------------------------------------------------------- HIPS autograd


def _autograd(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> Phases:
    import autograd
    import autograd.numpy as anp

    acts: dict[Activation, Callable[[Any], Any]] = {
        Activation.relu: lambda h: anp.maximum(h, 0.0),
        Activation.leaky_relu: lambda h: anp.where(h > 0, h, LEAKY_SLOPE * h),
        Activation.tanh: anp.tanh,
        Activation.sigmoid: lambda h: 1.0 / (1.0 + anp.exp(-h)),
    }
    rows, labels = np.arange(y.shape[0]), y.astype(np.int64)

    def ce(h: Any) -> Any:
        shifted = h - anp.max(h, axis=1, keepdims=True)
        logp = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(logp[rows, labels])

    loss: dict[Loss, Callable[[Any], Any]] = {
        Loss.mse: lambda h: anp.mean((h[:, 0] - y) ** 2),
        Loss.cross_entropy: ce,
    }

    def f(ws: list[Any], xx: Any) -> Any:
        h, it = xx, iter(ws)
        for layer in net.layers:
            h = acts[layer.activation](h) if isinstance(layer, Act) else _dot(anp, h, it)
        return loss[net.loss](h)

    ws = [np.array(a) for a in params.arrays()]
    all_grads = autograd.value_and_grad(lambda wx: f(wx[0], wx[1]))  # one backward pass for both
    weights = autograd.value_and_grad(f, argnum=0)
    return {
        "forward": lambda: f(ws, x),
        "fwd+bwd all": lambda: all_grads((ws, x)),
        "fwd+bwd weights": lambda: weights(ws, x),
    }


def _dot(anp: Any, h: Any, it: Iterator[Any]) -> Any:
    """h @ w + b, the next w and b taken from `it` (with `anp.dot`)."""
    return anp.dot(h, next(it)) + next(it)
