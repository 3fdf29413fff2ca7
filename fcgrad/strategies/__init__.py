"""Three independent ways to compute the loss and its gradients, sharing one op set.

Each strategy module follows the `Strategy` protocol (as early tinygrad's back ends
shared one vocabulary): `value(net, params, x, y)` and `value_and_grads(net, params, x, y,
*, input_grad=False, workspace=None) -> LossAndGrads`, for any net the description
(`fcgrad.nn.net.Net`) allows. Each keeps its own derivation of every kind, as three
tables (`LAYERS`, `ACTIVATIONS`, `LOSSES`); no strategy calls another's rules.

- `manual`: `Tensor`s holding `value` and `grad`, filled by hand-written rules such as
  `lin_grad`, `relu_grad`, `mse_grad`, `cross_entropy_grad` (the lesson's first version);
- `vwc` ("value with chain"): each op returns `(value, pullback)` and the model
  composes the pullbacks in reverse (the lesson's second version);
- `tape`: reverse-mode autodiff of the primitive ops (`fcgrad.engine.autodiff`), its tape
  recorded once per batch shape and replayed (`fcgrad.engine.replay`).
"""

from __future__ import annotations

from fcgrad.errors import ConfigError
from fcgrad.strategies import manual, tape, vwc
from fcgrad.strategies.base import (
    LossAndGrads,
    Strategy,
    Workspace,
    input_buffer,
    missing_rows,
)

__all__ = [
    "NAMES",
    "STRATEGIES",
    "LossAndGrads",
    "Strategy",
    "Workspace",
    "get",
    "input_buffer",
    "missing_rows",
]

STRATEGIES: dict[str, Strategy] = {s.NAME: s for s in (manual, vwc, tape)}
NAMES = tuple(STRATEGIES)  # the CLI's choices


def get(name: str) -> Strategy:
    """The strategy called `name`; ConfigError (param `strategy`) if there is none."""
    if name not in STRATEGIES:
        raise ConfigError(
            f"strategy {name!r} is unknown; choose one of {', '.join(NAMES)}", param="strategy"
        )
    return STRATEGIES[name]
