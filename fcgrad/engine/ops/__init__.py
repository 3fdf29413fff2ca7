"""The op set shared by the three strategies: numpy forward code with its VJP beside it.

Every op here is a `Primitive`: on plain numpy arrays it is the numpy function
(so `manual` and `vwc` call these for their forward passes), and on a traced
`Box` it records itself on the tape (so `tape` differentiates through them).
Each op's VJP rule sits right under its forward code, as one `defvjp` row, and
is written with the ops themselves, so rules can be differentiated again.

Broadcasting is undone in one place, `unbroadcast(g, shape)`.

Conventions: a rule `rule(g, ans, *args)` receives the output cotangent `g`
(shape of `ans`) and returns the argument's cotangent (shape of the argument).
Where an op is not differentiable, its rule returns a subgradient:

- ReLU's derivative at exactly 0 is 0 (the lesson's `relu_grad`, `(x > 0)`), and leaky
  ReLU's is its slope;
- `abs`'s at 0 is `sign(0)` = 0;
- `maximum` splits a tie evenly between its two arguments, as HIPS autograd does,
  and `max`/`min` split each output's cotangent evenly among the tied elements of
  its reduction (k tied elements get 1/k each);
- `std` at a constant input (std = 0) has gradient 0, never NaN.

A mask or other helper a rule needs is a `nondiff_primitive` (`positive`, `sign`),
so that a replayed tape (`fcgrad.engine.replay`) recomputes it on new values. Float32
stays float32: constants in rules are Python numbers, which numpy does not let
promote an array.

The ops are defined in `elementwise`, `reductions` and `linalg_shape`, on top of
`broadcasting` (`unbroadcast`, `sum`, `broadcast_to`, `reshape`); `operators` holds the
`Box` operators, attached when this package is imported. All are re-exported here.
"""

from fcgrad.engine.ops.broadcasting import broadcast_to, reshape, sum, unbroadcast
from fcgrad.engine.ops.elementwise import (
    LEAKY_SLOPE as LEAKY_SLOPE,  # (re-exported: leaky_relu's default slope)
)
from fcgrad.engine.ops.elementwise import (
    abs,
    add,
    cos,
    div,
    exp,
    leaky_relu,
    leaky_slope,
    log,
    maximum,
    mul,
    neg,
    positive,
    power,
    relu,
    sigmoid,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tanh,
)
from fcgrad.engine.ops.linalg_shape import expand_dims, matmul, squeeze, transpose
from fcgrad.engine.ops.operators import _install_operators
from fcgrad.engine.ops.reductions import log_softmax, max, mean, min, std, var

__all__ = [
    "abs",
    "add",
    "broadcast_to",
    "cos",
    "div",
    "exp",
    "expand_dims",
    "leaky_relu",
    "leaky_slope",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "mul",
    "neg",
    "positive",
    "power",
    "relu",
    "reshape",
    "sigmoid",
    "sign",
    "sin",
    "sqrt",
    "square",
    "squeeze",
    "std",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "unbroadcast",
    "var",
]


_install_operators()
