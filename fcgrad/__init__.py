"""fcgrad: a fully connected net on MNIST, with its gradients computed three ways and checked.

The autodiff API (`grad`, `value_and_grad`, `vjp`, `cached_vjp`) and the op set (`fcgrad.ops`,
which is `fcgrad.engine.ops`) work on any numpy function; `fcgrad.nn` describes the net;
`fcgrad.strategies` holds the lesson's three ways of computing its gradients; `load_mnist` reads
the data set.
"""

import importlib

TYPE_CHECKING = False  # (not typing's: `import fcgrad` imports nothing it need not)

__version__ = "0.1.0"

# The public names and where they live. They are imported on first use (PEP 562), so that
# `import fcgrad` (which the `fcgrad` command does first) loads no numpy: Ctrl-C during the
# command's start is then caught by `fcgrad.entry`, and `fcgrad --version` is quick.
_WHERE = {
    "GradCheckReport": "fcgrad.checking.check_grads",
    "check_grads": "fcgrad.checking.check_grads",
    "load_mnist": "fcgrad.data",
    "ops": "fcgrad.ops",
    **dict.fromkeys(
        (
            "custom_vjp",
            "defvjp",
            "grad",
            "hvp",
            "nondiff_primitive",
            "primitive",
            "unbox",
            "value_and_grad",
            "vjp",
        ),
        "fcgrad.engine.autodiff",
    ),
    "ReplayWarning": "fcgrad.engine.replay",
    "cached_vjp": "fcgrad.engine.replay",
    "FcgradError": "fcgrad.errors",
    "GradCheckFailed": "fcgrad.errors",
    "TracedValueError": "fcgrad.errors",
    **dict.fromkeys(("Activation", "Loss", "Net", "init_params"), "fcgrad.nn"),
    "Linear": "fcgrad.nn.params",
    "Params": "fcgrad.nn.params",
}

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


def __getattr__(name: str) -> "Any":
    """Import a public name on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'fcgrad' has no attribute {name!r}")
    module = importlib.import_module(_WHERE[name])
    value = module if name == "ops" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


if TYPE_CHECKING:
    from typing import Any

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
