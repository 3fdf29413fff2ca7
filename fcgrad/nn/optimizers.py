"""The optimizers that update a net's parameters in place from their gradients.

One row per optimizer in `OPTIMIZERS`, each a class with the same three methods:
`step(params, grads)` (in place), `state()` (the arrays and step count a checkpoint
keeps, so that a resumed run goes on bit for bit) and `load(state)`. Rates:

- `sgd`: p -= lr g (the lesson's update). Default lr: the loss's (0.1 CE, 0.01 mse).
- `momentum`: v = mu v + g; p -= lr v (heavy ball, Polyak 1964, in PyTorch's form).
  Default lr: the loss's SGD rate times (1 - mu), which takes the same steady-state step
  lr / (1 - mu) as SGD (0.01 for CE at mu = 0.9).
- `adam`: Kingma and Ba, "Adam: A Method for Stochastic Optimization", 2015, Algorithm 1
  with the efficient form of its section 2: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
  p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), with b1 = 0.9, b2 = 0.999,
  eps = 1e-8. Default lr: 1e-3, the paper's.

State arrays have the parameters' shapes and dtype (float32 stays float32), and are views
of one buffer per slot. `step_packed(p, g)` is the same update on the 1-D buffers that the
parameters' and gradients' arrays are views of (`fcgrad.nn.params.Packed`): one numpy call
per operation instead of one per array, with the same result bit for bit.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping

import numpy as np

from fcgrad.errors import ConfigError, ShapeError, StateError
from fcgrad.nn.losses import Loss
from fcgrad.nn.params import Packed, Params


class Optimizer(str, enum.Enum):
    """How the parameters are updated from their gradients (`--optimizer`)."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


@dataclasses.dataclass(frozen=True)
class Hyper:
    """An optimizer's settings: the learning rate, and momentum's mu (unused by the others)."""

    lr: float
    momentum: float = 0.9


State = dict[str, np.ndarray | int]  # arrays under names such as "velocity.w1", and "t"


class SGD:
    """p -= lr g, in place: the lesson's update. No state."""

    def __init__(self, params: Params, hyper: Hyper) -> None:
        self.lr = hyper.lr

    @staticmethod
    def default_lr(loss: Loss, momentum: float) -> float:
        return loss.default_lr

    def step(self, params: Params, grads: Params) -> None:
        """p -= lr g for every array, with no temporary: `grads` is scaled in place (so it
        holds lr g after the step), which rounds exactly as p -= lr * g does."""
        for p, g in zip(params.arrays(), grads.arrays()):
            self.step_packed(p, g)

    def step_packed(self, p: np.ndarray, g: np.ndarray) -> None:
        np.multiply(g, self.lr, out=g, casting="same_kind")
        p -= g

    def state(self) -> State:
        return {}

    def load(self, state: Mapping[str, np.ndarray | int]) -> None:
        pass


class _Stateful:
    """Arrays shaped like the parameters, one set per name in `SLOTS`, saved as
    'SLOT.w1', 'SLOT.b1', ...; and the step count `t`."""

    SLOTS: tuple[str, ...] = ()

    def __init__(self, params: Params, hyper: Hyper) -> None:
        self.hyper, self.t = hyper, 0
        self.names = list(params.named())
        # packed (for `step_packed`) when the parameters have one dtype, else array by array
        self.packed: dict[str, Packed] = {}
        if Packed.can_pack(params):
            self.packed = {s: Packed.zeros_like(params) for s in self.SLOTS}
            self.slots = {s: list(p.params.arrays()) for s, p in self.packed.items()}
        else:
            self.slots = {s: [np.zeros_like(p) for p in params.arrays()] for s in self.SLOTS}

    def state(self) -> State:
        out: State = {
            f"{s}.{n}": a for s, arrays in self.slots.items() for n, a in zip(self.names, arrays)
        }
        out["t"] = self.t
        return out

    def load(self, state: Mapping[str, np.ndarray | int]) -> None:
        """Take the arrays and step count of `state()`; ShapeError naming the first one
        missing or of another shape or dtype, StateError for a step count `t` that is not
        a whole number >= 0."""
        missing = [k for k in (*self.state(),) if k not in state]
        if missing:
            raise ShapeError(f"optimizer state {missing[0]} is missing")
        for s, arrays in self.slots.items():
            for n, a in zip(self.names, arrays):
                got = np.asarray(state[f"{s}.{n}"])
                if got.shape != a.shape or got.dtype != a.dtype:
                    raise ShapeError(
                        f"optimizer state {s}.{n} is {got.shape} {got.dtype}, "
                        f"the parameter {a.shape} {a.dtype}"
                    )
                a[...] = got
        t = state["t"]
        t = t[()] if isinstance(t, np.ndarray) and t.shape == () else t  # (from an .npz)
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or t < 0:
            raise StateError(f"optimizer step count t is {t!r}, not a whole number >= 0")
        self.t = int(t)


class Momentum(_Stateful):
    """v = mu v + g; p -= lr v, in place (PyTorch's SGD with momentum, no dampening)."""

    SLOTS = ("velocity",)

    @staticmethod
    def default_lr(loss: Loss, momentum: float) -> float:
        return loss.default_lr * (1.0 - momentum)

    def step(self, params: Params, grads: Params) -> None:
        self.t += 1
        for p, g, v in zip(params.arrays(), grads.arrays(), self.slots["velocity"]):
            self._update(p, g, v)

    def step_packed(self, p: np.ndarray, g: np.ndarray) -> None:
        self.t += 1
        self._update(p, g, self.packed["velocity"].buffer)

    def _update(self, p: np.ndarray, g: np.ndarray, v: np.ndarray) -> None:
        v *= self.hyper.momentum
        v += g
        p -= self.hyper.lr * v


class Adam(_Stateful):
    """Adam (Kingma and Ba 2015) with b1 = 0.9, b2 = 0.999, eps = 1e-8, in place."""

    SLOTS = ("m", "v")
    B1, B2, EPS = 0.9, 0.999, 1e-8

    @staticmethod
    def default_lr(loss: Loss, momentum: float) -> float:
        return 1e-3

    def load(self, state: Mapping[str, np.ndarray | int]) -> None:
        """As `_Stateful.load`; StateError too for negative second moments `v` (averages
        of squares: sqrt(v) of a negative one is NaN)."""
        super().load(state)
        for n, v in zip(self.names, self.slots["v"]):
            if v.size and float(v.min()) < 0:
                raise StateError(f"optimizer state v.{n} is negative in places; Adam's v is >= 0")

    def step(self, params: Params, grads: Params) -> None:
        rate = self._next_rate()
        for p, g, m, v in zip(params.arrays(), grads.arrays(), self.slots["m"], self.slots["v"]):
            self._update(p, g, m, v, rate)

    def step_packed(self, p: np.ndarray, g: np.ndarray) -> None:
        rate = self._next_rate()
        self._update(p, g, self.packed["m"].buffer, self.packed["v"].buffer, rate)

    def _next_rate(self) -> float:
        """Count the step; its bias-corrected rate lr sqrt(1 - b2^t) / (1 - b1^t)."""
        self.t += 1
        return self.hyper.lr * math.sqrt(1.0 - self.B2**self.t) / (1.0 - self.B1**self.t)

    def _update(
        self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, rate: float
    ) -> None:
        b1, b2 = self.B1, self.B2
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * np.square(g)
        p -= rate * m / (np.sqrt(v) + self.EPS)


Rule = SGD | Momentum | Adam

OPTIMIZERS: dict[Optimizer, type[Rule]] = {
    Optimizer.sgd: SGD,
    Optimizer.momentum: Momentum,
    Optimizer.adam: Adam,
}


def default_lr(optimizer: Optimizer, loss: Loss, momentum: float = 0.9) -> float:
    """The learning rate an optimizer trains the lesson's net with when none is given."""
    return OPTIMIZERS[Optimizer(optimizer)].default_lr(loss, momentum)


def make(optimizer: Optimizer, params: Params, hyper: Hyper) -> Rule:
    """The optimizer `optimizer` for `params`. ConfigError (param `lr`, `momentum`) for a rate
    that is not a positive number, or a momentum outside [0, 1)."""
    if not (math.isfinite(hyper.lr) and hyper.lr > 0):
        raise ConfigError(f"lr must be a positive number, got {hyper.lr}", param="lr")
    if not 0 <= hyper.momentum < 1:
        raise ConfigError(
            f"momentum must be at least 0 and below 1, got {hyper.momentum}", param="momentum"
        )
    return OPTIMIZERS[Optimizer(optimizer)](params, hyper)
