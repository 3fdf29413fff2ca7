"""The one description of a net, read by everything that runs one.

A `Net` is a sequence of layers and a loss. Layers are `Dense` (x @ w + b, with
parameters) and `Act` (an elementwise `Activation`, none). The lesson's net is
`Net.mlp((784, 50, 1), Loss.mse)`: dense 784->50, relu, dense 50->1, then MSE on the
digit. Init (`fcgrad.nn.init`), the plain forward pass below, each strategy's table
(`fcgrad.strategies`), the peers in bench, checkpoints and the CLI all read it; each
strategy keeps its own derivation of every kind (`KINDS`) in its own table.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator, Sequence
from typing import ClassVar, TypeVar

import numpy as np

from fcgrad.errors import ConfigError, ShapeError
from fcgrad.nn.activations import ACTIVATIONS, Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.params import Linear, Params


@dataclasses.dataclass(frozen=True)
class Dense:
    """x @ w + b: (N, fan_in) -> (N, fan_out), with w (fan_in, fan_out) and b (fan_out,)."""

    fan_in: int
    fan_out: int
    kind: ClassVar[str] = "dense"


@dataclasses.dataclass(frozen=True)
class Act:
    """An elementwise activation: (N, k) -> (N, k), no parameters."""

    activation: Activation

    @property
    def kind(self) -> str:
        return self.activation.value


Layer = Dense | Act

LAYER_KINDS = ("dense",)  # the layers with parameters; activations are `Activation`'s
KINDS = (*LAYER_KINDS, *(a.value for a in Activation))


@dataclasses.dataclass(frozen=True)
class Net:
    """Layers, input side first, and the loss on the last layer's output (hashable)."""

    layers: tuple[Layer, ...]
    loss: Loss

    @classmethod
    def mlp(cls, sizes: Sequence[int], loss: Loss, activation: Activation = Activation.relu) -> Net:
        """Dense layers of widths `sizes` (input first) with `activation` between them and
        none after the last. ConfigError for fewer than two sizes or a size that is not a
        positive int (param `hidden`), a loss or activation that is unknown, or a loss that
        cannot take the last width (param `loss`: mse takes 1, cross-entropy 2 or more)."""
        if len(sizes) < 2 or not all(_whole(n) and n >= 1 for n in sizes):
            raise ConfigError(
                f"hidden sizes must be positive integers, got layer sizes {list(sizes)}",
                param="hidden",
            )
        loss, activation = _kind(Loss, loss, "loss"), _kind(Activation, activation, "activation")
        if not loss.row.fits(int(sizes[-1])):
            raise ConfigError(
                f"loss {loss.value} cannot take {sizes[-1]} outputs (layer sizes {list(sizes)})",
                param="loss",
            )
        layers: list[Layer] = []
        for fan_in, fan_out in itertools.pairwise(int(n) for n in sizes):
            layers += [Dense(fan_in, fan_out), Act(activation)]
        return cls(tuple(layers[:-1]), loss)

    @classmethod
    def like(
        cls, params: Params, loss: Loss | None = None, activation: Activation = Activation.relu
    ) -> Net:
        """The mlp whose dense layers have the shapes of `params`; without a `loss`, mse for
        one output and cross-entropy for more."""
        return cls.mlp(params.sizes, loss or fitting_loss(params.sizes[-1]), activation)

    @functools.cached_property  # (read on every training step, by `check`)
    def dense(self) -> tuple[Dense, ...]:
        """The dense layers, in order (one `Linear` of the params each)."""
        return tuple(la for la in self.layers if isinstance(la, Dense))

    @functools.cached_property
    def _shapes(self) -> tuple[tuple[tuple[int, int], tuple[int]], ...]:
        """Each dense layer's (w shape, b shape)."""
        return tuple(((d.fan_in, d.fan_out), (d.fan_out,)) for d in self.dense)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Widths of the dense layers, input first: (784, 50, 1) for the lesson's net."""
        return (self.dense[0].fan_in, *(d.fan_out for d in self.dense))

    @property
    def activations(self) -> tuple[Activation, ...]:
        """The activations used, each once, in order of first use."""
        acts = (la.activation for la in self.layers if isinstance(la, Act))
        return tuple(dict.fromkeys(acts))

    def describe(self) -> str:
        """E.g. '784-50-10 relu, cross-entropy'."""
        acts = "+".join(a.value for a in self.activations) or "linear"
        return f"{'-'.join(map(str, self.sizes))} {acts}, {self.loss.value}"

    def walk(self, params: Params) -> Iterator[tuple[Layer, Linear | None]]:
        """Each layer with its parameters (a `Linear` for a dense layer, else None).
        ShapeError when `params` has another number of layers or other shapes."""
        self.check(params)
        it = iter(params.layers)
        for layer in self.layers:
            yield layer, next(it) if isinstance(layer, Dense) else None

    def check(self, params: Params) -> None:
        """ShapeError naming the first layer whose parameters do not fit the description."""
        if len(params.layers) != len(self.dense):
            raise ShapeError(
                f"the net has {len(self.dense)} dense layers but the parameters "
                f"{len(params.layers)}"
            )
        for i, (p, (w, b)) in enumerate(zip(params.layers, self._shapes), start=1):
            if p.w.shape != w or p.b.shape != b:
                raise ShapeError(
                    f"layer {i} is dense {w[0]}->{w[1]}, but w{i} is {p.w.shape} "
                    f"and b{i} {p.b.shape}"
                )


class NetConfig:
    """What the configurations of a run (train, gradcheck, bench) share: their `loss`, `hidden`
    and `activation` fields describe the net, and their counts are checked alike."""

    loss: Loss
    hidden: tuple[int, ...]
    activation: Activation

    def net(self, n_in: int = 784) -> Net:
        """The net of this run, for inputs of width `n_in`."""
        return Net.mlp((n_in, *self.hidden, self.loss.n_out), self.loss, self.activation)

    def check_at_least(self, **lows: int) -> None:
        """ConfigError (param: the field) for the first field below its low (None passes), or
        a hidden size below 1."""
        for name, low in lows.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}", param=name)
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(
                f"hidden sizes must be at least 1, got {list(self.hidden)}", param="hidden"
            )


def fitting_loss(n_out: int) -> Loss:
    """mse for one output, cross-entropy for more: a loss for a net built from sizes alone."""
    return Loss.mse if n_out == 1 else Loss.cross_entropy


def _whole(n: object) -> bool:
    """An int (or numpy integer), not a bool or a float such as 50.5."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


K = TypeVar("K", Loss, Activation)


def _kind(kind: type[K], value: object, param: str) -> K:
    """`kind(value)`, or ConfigError (param `param`) listing the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(k.value for k in kind)
        raise ConfigError(
            f"{param} {value!r} is unknown; choose one of {choices}", param=param
        ) from None


def forward(net: Net, params: Params, x: np.ndarray) -> np.ndarray:
    """The net's output for inputs `x` (N, n_in): an (N, n_out) array, dtype of `x` (plain
    numpy: what evaluation and finite differences use)."""
    h = x
    for layer, p in net.walk(params):
        if p is not None:
            h = h @ p.w + p.b
        elif isinstance(layer, Act):
            h = ACTIVATIONS[layer.activation].op(h)
    return h
