"""The activations a net may use between its dense layers, and the init each one calls for.

One row per activation (`ACTIVATIONS`): its forward op (an `fcgrad.ops` primitive, used by
`fcgrad.nn.net.forward`) and the init of the dense layer that feeds it:

- relu and leaky-relu: *kaiming* init, `randn * gain / sqrt(fan_in)` with gain
  `sqrt(2 / (1 + a^2))` for negative slope `a` (He, Zhang, Ren and Sun, "Delving Deep
  into Rectifiers", 2015, eq. 10 and 15; a = 0 gives the lesson's `sqrt(2 / fan_in)`);
- tanh and sigmoid: *Glorot/Xavier* init, `randn * sqrt(2 / (fan_in + fan_out))`
  (Glorot and Bengio, "Understanding the difficulty of training deep feedforward neural
  networks", 2010, eq. 12, the normal form of its variance 2 / (n_in + n_out)).

The slope of leaky ReLU is `fcgrad.ops.LEAKY_SLOPE` = 0.01 (Maas, Hannun and Ng, 2013).
Each strategy keeps its own derivation of every activation in its own table
(`fcgrad.strategies`); a test fails, naming the activation, when one misses a row.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import Any

from fcgrad.engine import ops


class Activation(str, enum.Enum):
    """The elementwise nonlinearity between dense layers (`--activation`)."""

    relu = "relu"
    tanh = "tanh"
    sigmoid = "sigmoid"
    leaky_relu = "leaky-relu"


def kaiming(slope: float) -> Callable[[int, int], float]:
    """The std of kaiming init for a rectifier of negative slope `slope`: gain / sqrt(fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + slope**2))
    return lambda fan_in, fan_out: gain / math.sqrt(fan_in)


def glorot(fan_in: int, fan_out: int) -> float:
    """The std of Glorot/Xavier normal init: sqrt(2 / (fan_in + fan_out))."""
    return math.sqrt(2.0 / (fan_in + fan_out))


@dataclasses.dataclass(frozen=True)
class ActivationRow:
    """An activation's forward op and the std of the weights of the dense layer feeding it,
    as a function of (fan_in, fan_out); `init` names the scheme."""

    op: Callable[[Any], Any]
    std: Callable[[int, int], float]
    init: str


ACTIVATIONS: dict[Activation, ActivationRow] = {
    Activation.relu: ActivationRow(ops.relu, kaiming(0.0), "kaiming"),
    Activation.leaky_relu: ActivationRow(ops.leaky_relu, kaiming(ops.LEAKY_SLOPE), "kaiming"),
    Activation.tanh: ActivationRow(ops.tanh, glorot, "glorot"),
    Activation.sigmoid: ActivationRow(ops.sigmoid, glorot, "glorot"),
}
