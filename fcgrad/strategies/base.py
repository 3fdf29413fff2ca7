"""What every strategy shares: the `Strategy` protocol, its result, and reused buffers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, TypeVar

import numpy as np

from fcgrad.errors import ConfigError
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Net
from fcgrad.nn.params import Packed, Params


@dataclasses.dataclass
class LossAndGrads:
    """A loss (float; nats for cross-entropy) and its gradients.

    `params` holds d loss / d parameter with each parameter's shape and dtype;
    `input` is d loss / d x, shaped like x, or None when it was not asked for.
    """

    loss: float
    params: Params
    input: np.ndarray | None = None

    def named(self) -> dict[str, np.ndarray]:
        """The gradients under the lesson's names (w1, b1, ...), then `x` if present."""
        out = self.params.named()
        if self.input is not None:
            out["x"] = self.input
        return out


class Workspace:
    """Large buffers reused across calls, by (name, shape, dtype).

    A full-batch pass writes a (60000, 784) input gradient: into a fresh array that
    costs the page faults of 188 MB, about 5 ms of a 70 ms pass; into a reused buffer
    it does not. Pass the same workspace to repeated `value_and_grads` calls (a
    benchmark, a training loop); a result drawn from it is overwritten by the next call
    that uses it, so copy what you keep. All three strategies use it.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}
        self._gradients: dict[tuple[object, ...], Packed] = {}
        self._last_gradients: tuple[tuple[np.ndarray, ...], Packed] | None = None

    def buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialized array of `shape` and `dtype`, the same one each time it is asked for."""
        key = (name, tuple(shape), np.dtype(dtype))
        if key not in self._buffers:
            self._buffers[key] = np.empty(shape, dtype)
        return self._buffers[key]

    def gradients(self, params: Params) -> Packed:
        """Where a strategy given this workspace writes the parameters' gradients: arrays
        shaped like `params` (and of their dtype), views of one buffer (`Packed`), so that
        an optimizer updates them all in one call per operation. The same each time."""
        arrays = tuple(params.arrays())
        last = self._last_gradients
        if last is not None and all(a is b for a, b in zip(last[0], arrays)):  # a hot path
            return last[1]
        key = (params.layers[0].w.dtype, *(a.shape for a in arrays))
        if key not in self._gradients:
            self._gradients[key] = Packed.empty_like(params)
        self._last_gradients = (arrays, self._gradients[key])
        return self._gradients[key]


def input_buffer(workspace: Workspace | None, g: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """The workspace's buffer for g @ w.T (the input gradient), or None without a workspace."""
    if workspace is None:
        return None
    return workspace.buffer("input gradient", (g.shape[0], w.shape[0]), np.result_type(g, w))


def gradient_buffers(workspace: Workspace | None, params: Params, x: np.ndarray) -> Params | None:
    """The workspace's buffers for the parameters' gradients (`Workspace.gradients`), or None
    without a workspace or when x and the parameters are not all of one dtype (then the
    gradients are fresh arrays, each of its parameter's dtype)."""
    if workspace is None:
        return None
    dtype = x.dtype
    if any(a.dtype != dtype for a in params.arrays()):
        return None
    return workspace.gradients(params).params


class Strategy(Protocol):
    """One way to compute a net's loss and gradients; the modules `manual`, `vwc` and `tape`.

    `x` is (N, n_in) float32 or float64; `y` is the target from `fcgrad.nn.losses.targets`.
    Gradients have the dtype of the inputs: no strategy promotes float32 to float64. Each
    strategy derives every kind of the description itself, in its three tables.
    """

    NAME: str
    LAYERS: Mapping[str, object]  # keyed by layer kind ("dense")
    ACTIVATIONS: Mapping[Activation, object]
    LOSSES: Mapping[Loss, object]

    def value(self, net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> float:
        """The loss of the net on (x, y): the strategy's own forward pass."""
        ...

    def value_and_grads(
        self,
        net: Net,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        *,
        input_grad: bool = False,
        workspace: Workspace | None = None,
    ) -> LossAndGrads:
        """The loss and every parameter's gradient (and x's with `input_grad`; with a
        `Workspace`, large results may be written into reused buffers)."""
        ...


def missing_rows(strategy: Strategy) -> list[str]:
    """The kinds of layer, activation and loss the description allows that `strategy`'s
    tables have no row for, e.g. ['activation tanh']."""
    from fcgrad.nn.net import LAYER_KINDS

    return [
        *(f"layer {k}" for k in LAYER_KINDS if k not in strategy.LAYERS),
        *(f"activation {a.value}" for a in Activation if a not in strategy.ACTIVATIONS),
        *(f"loss {lo.value}" for lo in Loss if lo not in strategy.LOSSES),
    ]


K = TypeVar("K")
V = TypeVar("V")


def row(table: Mapping[K, V], kind: K, strategy: str) -> V:
    """`table[kind]`, or ConfigError naming the strategy and the kind it cannot run."""
    try:
        return table[kind]
    except KeyError:
        name = getattr(kind, "value", kind)
        raise ConfigError(f"strategy {strategy} has no rule for {name}") from None
