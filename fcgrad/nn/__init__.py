"""The net: its description (layers, activations, loss), parameters and init, losses, and
optimizers. Every strategy, checker, benchmark and the CLI read the same description.

- `net`: `Net` (layers and a loss), `Dense`, `Act`, `KINDS`, the plain `forward`;
- `activations`: `Activation` and each one's op and init;
- `losses`: `Loss` and each one's target, value and predicted digit;
- `params`: `Params` and `Linear`;
- `init`: `init_params`;
- `optimizers`: `Optimizer` (sgd, momentum, adam) with state for checkpoints.
"""

from fcgrad.nn.activations import Activation
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Act, Dense, Net, forward
from fcgrad.nn.params import Linear, Params

__all__ = [
    "Act",
    "Activation",
    "Dense",
    "Linear",
    "Loss",
    "Net",
    "Params",
    "forward",
    "init_params",
]
