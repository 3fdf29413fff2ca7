"""Reverse-mode automatic differentiation on a tape, over numpy arrays.

The engine follows HIPS autograd (Maclaurin, Duvenaud, Johnson, 2015): a
*primitive* is a numpy function with one VJP rule per differentiable argument
(`defvjp`); while a function is traced, every primitive call on a `Box` appends a
`Node` to the trace's *tape*. The backward pass replays the tape in reverse: each
node receives the cotangent of its output, pulls it back through its VJP rules
and accumulates the results into its parents' cotangents (a value used twice
receives the sum of both contributions).

VJP rules are written with the primitives themselves, so a backward pass run
inside an outer trace is recorded by it: `grad(grad(f))` works for the op set.

Public API, in the spirit of Swift's `gradient(at:in:)`, `valueWithGradient`
and `pullback(at:in:)`:

- `vjp(f, *args) -> (value, pullback)`, `pullback(cotangent) -> tuple of gradients`;
- `grad(f, argnums=0)` and `value_and_grad(f, argnums=0)` for scalar-valued `f`;
- `primitive`, `nondiff_primitive` (a mask or comparison: recorded, never
  differentiated), `defvjp` and `custom_vjp` to add ops.

`fcgrad.engine.replay.cached_vjp` records a function's tape once per signature and
replays it, for the same function called again and again (a training step).

Arguments may be Python floats, numpy scalars and arrays, or *pytrees* of them:
tuples, lists, dicts and dataclass instances (such as `fcgrad.nn.model.Params`).
A gradient has the structure, shapes and dtypes of its argument.

This module holds the backward pass and the public API. Primitives and the tape are in
`fcgrad.engine.tape`, traced values (`Box`, `unbox`) in `fcgrad.engine.traced`; the
names of both that the API uses are re-exported here.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad.engine.pytree import tree_flatten
from fcgrad.engine.pytree import (
    tree_paths as tree_paths,  # (re-exported: part of this module's API)
)
from fcgrad.engine.tape import (
    Held,
    Node,
    Primitive,
    Tape,
    VJPRule,
    _freeze,
    custom_vjp,
    defvjp,
    defvjp_into,
    hold,
    nondiff_primitive,
    primitive,
    rules_version,
)
from fcgrad.engine.traced import BRANCHING, Box, _unbox, shape_of, unbox, watching_reads
from fcgrad.errors import ShapeError

# the API, with what it re-exports from `tape`, `traced` and `pytree`
__all__ = [
    "BRANCHING",
    "Box",
    "Held",
    "Node",
    "Primitive",
    "Tape",
    "VJPRule",
    "accumulate",
    "check_into",
    "custom_vjp",
    "defvjp",
    "defvjp_into",
    "grad",
    "hold",
    "holding_fixed",
    "hvp",
    "input_value",
    "is_number",
    "leaf_grad",
    "nondiff_primitive",
    "primitive",
    "pull_into",
    "rules_version",
    "shape_of",
    "tree_paths",
    "unbox",
    "value_and_grad",
    "vjp",
    "watching_reads",
]

# ----------------------------------------------------------------------------- backward pass


def _backward(
    tape: Tape, end: Node, cotangent: Any, into: dict[Node, np.ndarray] | None = None
) -> dict[Node, Any]:
    """Replay `tape` in reverse from `end`; return the cotangent of every node reached.

    `into` maps input nodes used exactly once to arrays their cotangent is written into.
    """
    if into:
        uses = collections.Counter(p for n in tape.nodes for _, p in n.parents)
        into = {node: buf for node, buf in into.items() if uses[node] == 1}
    cts: dict[Node, Any] = {end: cotangent}
    for node in reversed(tape.nodes):
        g = cts.get(node)
        if g is None or node.prim is None or not node.needs_grad:
            continue
        for argnum, parent in node.parents:
            if not parent.needs_grad:
                continue
            if into and parent in into:
                cts[parent] = pull_into(
                    node.prim, argnum, g, node.ans, node.args, node.kwargs, into[parent]
                )
                continue
            rule = node.prim.vjps[argnum]
            pg = rule(g, node.ans, *node.args, **node.kwargs)
            prev = cts.get(parent)
            cts[parent] = pg if prev is None else accumulate(prev, pg)
    return cts


def pull_into(
    prim: Primitive,
    argnum: int,
    g: Any,
    ans: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    out: np.ndarray,
) -> np.ndarray:
    """The cotangent of argument `argnum` of a call `ans = prim(*args, **kwargs)`, written
    into `out` (directly when the op has an `into` rule and nothing is traced; otherwise
    computed, then copied)."""
    plain = not any(type(a) is Box for a in (g, *args))
    if plain and argnum in prim.into:
        pg = prim.into[argnum](g, ans, *args, out=out, **kwargs)
    else:
        pg = prim.vjps[argnum](g, ans, *args, **kwargs)
    if pg is not out:
        np.copyto(out, pg)
    return out


def accumulate(total: Any, more: Any) -> Any:
    """The cotangent of a value used more than once: the sum over its uses.

    `+` is numpy's add on arrays and `fcgrad.engine.ops.add` on traced values (higher order).
    """
    return total + more


# ----------------------------------------------------------------------------- public API


def vjp(f: Callable[..., Any], *args: Any) -> tuple[Any, Callable[..., tuple[Any, ...]]]:
    """Evaluate `f(*args)` on a fresh tape; return its value and its pullback.

    `pullback(cotangent)` takes a cotangent of the output's shape (a scalar for a
    scalar output) and returns one gradient per argument, each with the structure,
    shapes and dtypes of that argument. It may be called any number of times.
    `pullback(cotangent, into={i: array})` writes array argument i's gradient into
    the given array (of its shape and dtype) and returns that array: a large
    gradient computed again and again need not be allocated again and again.

    Raises TypeError if `f` returns something that is not an array or scalar, and
    `ShapeError` if a cotangent's shape differs from the output's.
    """
    tape = Tape()
    structs = [tree_flatten(a) for a in args]
    boxed: list[Any] = []
    inputs: list[list[Box]] = []
    for leaves, unflatten in structs:
        boxes = [_box_input(leaf, tape) for leaf in leaves]
        inputs.append(boxes)
        boxed.append(unflatten(boxes))
    out = f(*boxed)
    if isinstance(out, Box) and out.tape is tape:
        value, end = out._value, out.node
        if type(value) is np.ndarray and value.flags.writeable:
            _freeze(tape.frozen, value)  # rules such as exp's read the output too
    elif isinstance(out, (np.ndarray, np.generic, float, int, Box)):
        value, end = out, None  # the output does not depend on the inputs
    else:
        raise TypeError(f"vjp: f must return an array or scalar, not {type(out).__name__}")

    def pullback(cotangent: Any, *, into: dict[int, np.ndarray] | None = None) -> tuple[Any, ...]:
        if np.shape(cotangent) != np.shape(value):
            raise ShapeError(
                f"pullback: cotangent shape {np.shape(cotangent)} != output shape {np.shape(value)}"
            )
        targets = _into_nodes(into, inputs, args) if into else None
        cts = _backward(tape, end, cotangent, targets) if end is not None else {}
        grads = []
        for (leaves, unflatten), boxes in zip(structs, inputs):
            grads.append(
                unflatten([leaf_grad(leaf, cts.get(b.node)) for leaf, b in zip(leaves, boxes)])
            )
        for argnum, buf in (into or {}).items():  # an argument used twice was summed elsewhere
            if grads[argnum] is not buf:
                np.copyto(buf, grads[argnum])
                grads[argnum] = buf
        return tuple(grads)

    return value, pullback


def _into_nodes(
    into: dict[int, np.ndarray], inputs: list[list[Box]], args: tuple[Any, ...]
) -> dict[Node, np.ndarray]:
    """Map `pullback(into={argnum: array})` to input nodes; ShapeError for a buffer that does
    not match its argument (an array argument, same shape and dtype)."""
    nodes = {}
    for argnum, buf in into.items():
        check_into(argnum, buf, args[argnum])
        nodes[inputs[argnum][0].node] = buf
    return nodes


def check_into(argnum: int, buf: Any, arg: Any) -> None:
    """Raise ShapeError unless `buf` can hold the gradient of array argument `argnum`: an
    array of the argument's shape and dtype."""
    if not (
        isinstance(arg, np.ndarray)
        and isinstance(buf, np.ndarray)
        and buf.shape == arg.shape
        and buf.dtype == arg.dtype
    ):
        raise ShapeError(f"pullback: into[{argnum}] must be an array shaped like argument {argnum}")


def is_number(leaf: Any) -> bool:
    """Whether a leaf is a number or an array a tape can take as an input (not a bool)."""
    return isinstance(leaf, (np.ndarray, np.generic, float, int)) and not isinstance(
        leaf, (bool, np.bool_)
    )


def input_value(leaf: Any) -> Any:
    """The value an input leaf is traced as: integers become float64 arrays, so that their
    gradient is defined; TypeError for a leaf that is not a number, array or Box."""
    if type(leaf) is np.ndarray and leaf.dtype.kind in "fc":
        return leaf  # the common case first
    if not (is_number(leaf) or isinstance(leaf, Box)):
        raise TypeError(f"cannot differentiate with respect to a {type(leaf).__name__}")
    if isinstance(leaf, int) or (
        isinstance(leaf, np.ndarray | np.generic) and leaf.dtype.kind in "iu"
    ):
        return np.asarray(leaf, dtype=np.float64)
    return leaf


def _box_input(leaf: Any, tape: Tape) -> Box:
    value = input_value(leaf)
    if type(value) is np.ndarray:
        _freeze(tape.frozen, value)  # (also when another holder froze it: they share it)
    node = Node(None, (), {}, value, ())
    return Box(value, tape, node)


def leaf_grad(leaf: Any, g: Any) -> Any:
    """The gradient of one input leaf: zeros if unreached, and always the leaf's kind and dtype.

    A float32 leaf gets a float32 gradient even where a float64 constant in `f`
    promoted the computation; a Python float gets a float; an array, an array.
    """
    if type(g) is np.ndarray and type(leaf) is np.ndarray and g.dtype == leaf.dtype:
        return g  # the common case first
    if isinstance(g, Box):  # higher order: the gradient is itself traced
        return g
    if isinstance(leaf, Box):
        return np.zeros_like(leaf._value) if g is None else g
    if isinstance(leaf, (float, int)) and not isinstance(leaf, np.generic):
        return 0.0 if g is None else float(g)
    dtype = _float_dtype(leaf)
    if isinstance(leaf, np.ndarray):
        return np.zeros(leaf.shape, dtype) if g is None else np.asarray(g).astype(dtype, copy=False)
    return dtype.type(0 if g is None else g)


def _float_dtype(x: Any) -> np.dtype:
    dt = np.result_type(x)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _as_argnums(argnums: int | Sequence[int]) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def holding_fixed(
    f: Callable[..., Any], args: tuple[Any, ...], nums: Sequence[int]
) -> Callable[..., Any]:
    """`f` as a function of `args[nums]` alone, its other arguments held at `args`."""

    def g(*diff: Any) -> Any:
        full = list(args)
        for i, d in zip(nums, diff):
            full[i] = d
        return f(*full)

    return g


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0
) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing `(f(*args), gradient of f with respect to args[argnums])`.

    `f` must return a scalar (shape ()); the gradient has the structure of the
    argument, or is a tuple of those when `argnums` is a sequence.

    Raises `ShapeError` if `f` returns a non-scalar.
    """
    nums = _as_argnums(argnums)

    def wrapped(*args: Any) -> tuple[Any, Any]:
        value, pullback = vjp(holding_fixed(f, args, nums), *(args[i] for i in nums))
        if np.shape(value) != ():
            raise ShapeError(
                f"grad: f must return a scalar, got shape {np.shape(value)}; use vjp for vectors"
            )
        grads = pullback(np.ones_like(_unbox(value)))
        return value, grads[0] if isinstance(argnums, int) else grads

    return wrapped


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """Return a function computing the gradient of scalar-valued `f` (see `value_and_grad`)."""
    vg = value_and_grad(f, argnums)
    return lambda *args: vg(*args)[1]


def hvp(f: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Hessian-vector product of scalar `f`: `hvp(f)(x, v)` = H(x) v, by reverse over reverse.

    x and v are arrays (or floats) of the same shape; the result has that shape.
    """

    def product(x: Any, v: Any) -> Any:
        from fcgrad.engine.ops import mul, sum

        return grad(lambda y: sum(mul(grad(f)(y), v)))(x)

    return product
