"""fcgrad: a fully connected net on MNIST, with its gradients computed three ways and checked.

The autodiff API (`grad`, `value_and_grad`, `vjp`, `cached_vjp`) and the op set (`fcgrad.ops`)
work on any numpy function; `fcgrad.strategies` holds the lesson's three ways of
computing the net's gradients; `load_mnist` reads the data set.
"""

from fcgrad.autodiff import (
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
from fcgrad.check import GradCheckReport, check_grads
from fcgrad.data import load_mnist
from fcgrad.errors import FcgradError, GradCheckFailed, TracedValueError
from fcgrad.model import Linear, Params, init_params
from fcgrad.replay import ReplayWarning, cached_vjp

__version__ = "0.1.0"

__all__ = [
    "FcgradError",
    "GradCheckFailed",
    "GradCheckReport",
    "Linear",
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
    "primitive",
    "unbox",
    "value_and_grad",
    "vjp",
]
