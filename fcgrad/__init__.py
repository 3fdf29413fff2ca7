"""fcgrad: a fully connected net on MNIST, with its gradients computed three ways and checked.

The autodiff API (`grad`, `value_and_grad`, `vjp`, `cached_vjp`) and the op set (`fcgrad.ops`,
which is `fcgrad.engine.ops`) work on any numpy function; `fcgrad.nn` describes the net;
`fcgrad.strategies` holds the lesson's three ways of computing its gradients; `load_mnist` reads
the data set.
"""

import sys

from fcgrad.checking.check_grads import GradCheckReport, check_grads
from fcgrad.data import load_mnist
from fcgrad.engine import ops
from fcgrad.engine.autodiff import (
    custom_vjp,
    defvjp,
    grad,
    hvp,
    nondiff_primitive,
    primitive,
    unbox,
    value_and_grad,
    vjp,
)
from fcgrad.engine.replay import ReplayWarning, cached_vjp
from fcgrad.errors import FcgradError, GradCheckFailed, TracedValueError
from fcgrad.nn import Activation, Loss, Net, init_params
from fcgrad.nn.params import Linear, Params

sys.modules["fcgrad.ops"] = ops  # the op set's public name: `from fcgrad.ops import relu`

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "FcgradError",
    "GradCheckFailed",
    "GradCheckReport",
    "Linear",
    "Loss",
    "Net",
    "Params",
    "ReplayWarning",
    "TracedValueError",
    "cached_vjp",
    "check_grads",
    "custom_vjp",
    "defvjp",
    "grad",
    "hvp",
    "init_params",
    "load_mnist",
    "nondiff_primitive",
    "ops",
    "primitive",
    "unbox",
    "value_and_grad",
    "vjp",
]
