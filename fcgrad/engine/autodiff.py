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
"""

from __future__ import annotations

import collections
import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from fcgrad.engine.pytree import tree_flatten
from fcgrad.engine.pytree import (
    tree_paths as tree_paths,  # (re-exported: part of this module's API)
)
from fcgrad.errors import ShapeError, TracedValueError

VJPRule = Callable[..., Any]


# ----------------------------------------------------------------------------- primitives

# Bumped whenever a primitive's forward code or a VJP rule changes, so that programs
# recorded from the old ones (`fcgrad.engine.replay`) are recorded again.
rules_version = [0]


class _Rules(dict[int, "VJPRule"]):
    """A primitive's VJP rules by argument number; replacing one bumps `rules_version` (a
    new rule cannot be in a recorded program: recording without it raised)."""

    def __setitem__(self, argnum: int, rule: VJPRule) -> None:
        if argnum in self:
            rules_version[0] += 1
        super().__setitem__(argnum, rule)

    def __delitem__(self, argnum: int) -> None:
        super().__delitem__(argnum)
        rules_version[0] += 1


def _bumping(method: Callable[..., Any]) -> Callable[..., Any]:
    def changed(self: _Rules, *args: Any, **kwargs: Any) -> Any:
        rules_version[0] += 1
        return method(self, *args, **kwargs)

    return changed


for _name in ("update", "pop", "popitem", "clear", "setdefault", "__ior__"):
    setattr(_Rules, _name, _bumping(getattr(dict, _name)))


class Primitive:
    """A differentiable numpy function: `fwd` plus one VJP rule per argument.

    A rule `rule(g, ans, *args, **kwargs)` maps the cotangent `g` of the output
    `ans` to the cotangent of its argument, already unbroadcast to that argument's
    shape. Calling a primitive on plain arrays is plain numpy; calling it on a
    `Box` records a node on the box's tape.
    """

    __slots__ = ("__dict__", "fwd", "fwd_into", "into", "name", "nondiff", "vjps")

    def __init__(
        self, fwd: Callable[..., Any], name: str | None = None, *, nondiff: bool = False
    ) -> None:
        self.fwd = fwd
        self.name = name or fwd.__name__
        self.nondiff = nondiff  # the output carries no gradient (a comparison, a mask)
        self.vjps: dict[int, VJPRule] = _Rules()
        self.into: dict[int, VJPRule] = _Rules()  # first-order rules writing into an `out` array
        self.fwd_into: Callable[..., Any] | None = None  # fwd(*args, out=array), if it has one
        self.__doc__ = fwd.__doc__

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("vjps", "into"):
            value = _Rules(value)  # (so that changing a rule is seen, also after this)
        if name in ("fwd", "fwd_into", "nondiff", "vjps", "into") and hasattr(self, name):
            rules_version[0] += 1  # a change, not the first assignment in __init__
        object.__setattr__(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _live_tapes:  # no trace is alive, so no argument is a Box: plain numpy
            return self.fwd(*args, **kwargs)
        top = None  # the innermost trace among the arguments (inlined: called for every op)
        for a in args:
            if type(a) is Box and (top is None or a.tape.id > top.id):
                top = a.tape
        if top is None:
            return self.fwd(*args, **kwargs)
        return _record(self, top, args, kwargs)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def primitive(fwd: Callable[..., Any]) -> Primitive:
    """Decorator: turn a numpy function into a `Primitive` (give it rules with `defvjp`)."""
    return Primitive(fwd)


def nondiff_primitive(fwd: Callable[..., Any]) -> Primitive:
    """Decorator: a `Primitive` whose output carries no gradient, such as a comparison or a
    mask. It is recorded on the tape (so a replayed tape recomputes it) but never
    differentiated: its inputs receive nothing through it."""
    return Primitive(fwd, nondiff=True)


def defvjp(prim: Primitive, *rules: VJPRule | None) -> None:
    """Register the VJP rules of `prim`, one per positional argument (None: not differentiable)."""
    for argnum, rule in enumerate(rules):
        if rule is not None:
            prim.vjps[argnum] = rule


def defvjp_into(prim: Primitive, argnum: int, rule: VJPRule) -> None:
    """Register a first-order variant of a VJP rule, `rule(g, ans, *args, out=array)`, that
    writes its result into a given array (used by `pullback(..., into=...)`)."""
    prim.into[argnum] = rule


def custom_vjp(
    fwd: Callable[..., Any], *rules: VJPRule | None, name: str | None = None
) -> Primitive:
    """A new primitive in one line: its numpy forward and one VJP rule per argument.

    A rule is `rule(g, ans, *args)` -> the argument's cotangent, e.g.
    `tanh = custom_vjp(np.tanh, lambda g, ans, x: g * (1 - ans * ans))`.
    Check it with `fcgrad.check_grads(lambda x: fcgrad.ops.sum(tanh(x)), (x,))`.
    """
    prim = Primitive(fwd, name)
    defvjp(prim, *rules)
    return prim


# ----------------------------------------------------------------------------- tracing

_trace_ids = itertools.count(1)
_live_tapes: set[int] = set()  # ids of the tapes not yet garbage-collected


_frozen_by: dict[int, int] = {}  # id(array) -> how many holders froze it (their lists keep it)


def _freeze(frozen: list[np.ndarray], a: np.ndarray) -> None:
    """Make `a` read-only for one more holder, which notes it in `frozen` (an array read-only
    for another reason is left alone: there is nothing to restore)."""
    n = _frozen_by.get(id(a))
    if n is None:
        if not a.flags.writeable:
            return
        a.setflags(False)  # type: ignore[call-arg]  # (positional: faster than write=False)
        n = 0
    _frozen_by[id(a)] = n + 1
    frozen.append(a)


def _thaw(arrays: list[np.ndarray]) -> None:
    """Restore the arrays one holder froze, last frozen first (a view frozen before its base
    can be made writeable again only after the base); an array another holder froze too
    stays read-only until that one is gone."""
    for a in reversed(arrays):
        n = _frozen_by.pop(id(a))
        if n > 1:
            _frozen_by[id(a)] = n - 1
            continue
        try:  # noqa: SIM105 (contextlib.suppress would cost more than the rest of the loop)
            a.setflags(True)
        except ValueError:  # a view whose base another holder froze: stays so
            pass


class Held(list[np.ndarray]):
    """The arrays `hold` made read-only: writeable again when this is garbage-collected."""

    __slots__ = ()

    def __del__(self) -> None:
        _thaw(self)


def hold(*arrays: Any) -> Held:
    """Make the numpy arrays among `arrays` read-only until the returned `Held` is collected.

    Keep it with the code that reads them later (a pullback's closure): changing one in
    place in between raises numpy's ValueError ("... is read-only") instead of
    silently mixing two points. Holds and tapes share arrays: one is writeable again when
    the last of them is gone (one read-only before stays so). Writes through another view
    of the same memory are not caught.
    """
    held = Held()
    for a in arrays:
        if type(a) is np.ndarray:
            _freeze(held, a)
    return held


class Tape:
    """The nodes of one trace, in the order they were recorded (a topological order).

    Every array a node saves for the backward pass is made read-only while the tape
    lives (`_freeze`, as `hold` does): mutating an input in place between the forward
    and the backward pass raises numpy's "assignment destination is read-only" instead
    of silently giving the derivative at the new value. Writes through *another* view
    of the same memory are not caught. The flags are restored when the tape (its
    pullback and boxes) is garbage-collected.
    """

    __slots__ = ("frozen", "id", "nodes")

    def __init__(self) -> None:
        self.id = next(_trace_ids)
        self.nodes: list[Node] = []
        self.frozen = Held()  # thawed when the tape is collected
        _live_tapes.add(self.id)

    def __del__(self) -> None:
        _live_tapes.discard(self.id)


class Node:
    """One recorded primitive call: the op, its arguments and output, and its parents (the
    arguments that were traced, as (argnum, node)).

    `needs_grad` is False for a value no gradient flows through: the output of a
    `nondiff_primitive`, or of ops on such values only. The backward pass skips it.
    """

    __slots__ = ("ans", "args", "kwargs", "needs_grad", "parents", "prim")

    def __init__(
        self,
        prim: Primitive | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ans: Any,
        parents: tuple[tuple[int, Node], ...],
        needs_grad: bool = True,
    ) -> None:
        self.prim = prim
        self.args = args
        self.kwargs = kwargs
        self.ans = ans
        self.parents = parents
        self.needs_grad = needs_grad


# What branching on a traced value does: the advice of its truth test and comparisons.
BRANCHING = (
    "a branch on a traced value makes the gradient hold only on that branch; with vjp you "
    "may branch on `.value` (fcgrad.unbox), but cached_vjp will not replay a function that "
    "reads one; prefer ops such as fcgrad.ops.maximum and relu"
)

_reads: list[str] | None = None  # while `watching_reads`: how user code read traced values


@contextlib.contextmanager
def watching_reads() -> Iterator[list[str]]:
    """Note how user code reads traced values while the block runs (`.value`, `unbox`,
    `float`, `int`, `repr`, `format`), in the list this yields; the engine reads `_value`."""
    global _reads
    outer, _reads = _reads, []
    try:
        yield _reads
    finally:
        _reads = outer


class Box:
    """A value being traced: wraps an array (or another `Box`, for higher order).

    Supports numpy-style arithmetic (`+ - * / @`, unary `-`, `**2`), `.T`,
    `.sum()`, `.mean()`, `.reshape()`, and the attributes `shape`, `ndim`, `dtype`.
    numpy functions, comparisons and truth tests raise `TracedValueError`. The value
    itself is `.value` (or `float(box)`): a constant for the gradient, which `vjp`
    allows and `cached_vjp` will not replay.
    """

    __slots__ = ("_value", "node", "tape")

    def __init__(self, value: Any, tape: Tape, node: Node) -> None:
        self._value = value
        self.tape = tape
        self.node = node

    def _read(self, how: str) -> Any:
        if _reads is not None:
            _reads.append(how)
        return self._value

    value = property(lambda self: self._read(".value"), doc="The value under one layer of boxes.")
    shape = property(lambda self: np.shape(self._value))
    ndim = property(lambda self: np.ndim(self._value))
    dtype = property(lambda self: np.result_type(self._value))
    size = property(lambda self: np.size(self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Box({self._read('repr')!r})"

    def __format__(self, spec: str) -> str:
        return format(self._read("format"), spec)

    def __float__(self) -> float:
        return float(self._read("float"))

    def __int__(self) -> int:
        return int(self._read("int"))

    def __bool__(self) -> bool:
        raise TracedValueError(f"a traced value has no truth value: {BRANCHING}")

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        # np.asarray, np.array, ... would lose the tape (or make an object array)
        raise TracedValueError(
            "a traced value was converted to a numpy array (numpy.asarray or the like); use "
            "the fcgrad.ops primitives (or define one with fcgrad.primitive and defvjp)"
        )

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # `ndarray + box` is np.add(ndarray, box), which comes here: an operator's ufunc runs
        # its fcgrad.ops primitive; any other ufunc is an error naming the op to use
        name = ufunc.__name__
        if name in _COMPARISONS:
            raise _compared(_COMPARISONS[name])
        if method == "__call__" and not kwargs and name in _OPERATORS:
            op = _op(name)
            if op is not None:
                return op(*inputs)
        if "out" in kwargs:
            raise TracedValueError(
                f"numpy.{name} cannot write a traced value into an array (out=, or an "
                "in-place operator such as `a += traced`); write `a = a + traced`"
            )
        if method != "__call__":
            raise _numpy_called(f"numpy.{name}.{method}", None)
        raise _numpy_called(f"numpy.{name}", name)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func in _SHAPE_FUNCTIONS:  # (they read shapes and dtypes only)
            return func(*(_unbox(a) for a in args), **kwargs)
        raise _numpy_called(f"{func.__module__}.{func.__name__}", func.__name__)

    # The arithmetic dunders are attached in fcgrad.ops, next to the primitives.


# numpy's ufuncs and functions, by name: comparisons, the ufuncs of the operators (which run
# their fcgrad.ops primitive), functions of shapes and dtypes only, and how fcgrad.ops
# spells what numpy calls otherwise
_COMPARISONS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">="}
_COMPARISONS.update({"equal": "==", "not_equal": "!="})
_OPERATORS = {"add", "subtract", "multiply", "divide", "matmul", "negative", "power"}
_SHAPE_FUNCTIONS = {np.shape, np.ndim, np.size, np.result_type}
_OP_NAMES = {"subtract": "sub", "multiply": "mul", "divide": "div", "negative": "neg"}
_OP_NAMES.update({"absolute": "abs", "amax": "max", "amin": "min"})


def _op(numpy_name: str) -> Any:
    """The fcgrad.ops op of a numpy name (`subtract`: `sub`), or None (looked up late)."""
    from fcgrad.engine import ops

    name = _OP_NAMES.get(numpy_name, numpy_name)
    fn = getattr(ops, name, None)
    return fn if isinstance(fn, Primitive) or name in getattr(ops, "__all__", ()) else None


def _numpy_called(qualname: str, name: str | None) -> TracedValueError:
    define = "define a primitive with fcgrad.primitive and defvjp"
    if name and _op(name) is not None:
        use = f"use fcgrad.ops.{_OP_NAMES.get(name, name)} (or {define})"
    else:
        use = f"fcgrad.ops has no {name}: {define}" if name else f"use fcgrad.ops (or {define})"
    return TracedValueError(f"{qualname} was called on a traced value; {use}")


def _compared(symbol: str) -> TracedValueError:
    return TracedValueError(f"a traced value was compared ({symbol}): {BRANCHING}")


def _comparison(symbol: str) -> Callable[[Box, Any], Any]:
    def compare(self: Box, other: Any) -> Any:
        raise _compared(symbol)

    return compare


for _dunder, _symbol in zip(("lt", "le", "gt", "ge", "eq", "ne"), _COMPARISONS.values()):
    setattr(Box, f"__{_dunder}__", _comparison(_symbol))  # (after the class: Box keeps its hash)


def _record(prim: Primitive, tape: Tape, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Box:
    parents = []
    raw = list(args)
    nested = False  # a Box of an outer trace among the arguments (higher order)
    needs_grad = False
    for i, a in enumerate(args):
        if type(a) is Box:
            if a.tape is tape:
                if a.node.needs_grad and not prim.nondiff:
                    if i not in prim.vjps:
                        raise TypeError(f"{prim.name}: argument {i} is not differentiable")
                    needs_grad = True
                parents.append((i, a.node))
                raw[i] = a = a._value
            nested = nested or type(a) is Box
        elif type(a) is np.ndarray and (a.flags.writeable or id(a) in _frozen_by):
            _freeze(tape.frozen, a)  # a constant the rules will read (inputs: frozen when boxed)
    ans = prim(*raw, **kwargs) if nested else prim.fwd(*raw, **kwargs)
    node = Node(prim, tuple(raw), kwargs, ans, tuple(parents), needs_grad)
    tape.nodes.append(node)
    return Box(ans, tape, node)


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


def shape_of(x: Any) -> tuple[int, ...]:
    """np.shape, without numpy's dispatch for the common case of an array (a hot path)."""
    if type(x) is np.ndarray:
        shape: tuple[int, ...] = x.shape
        return shape
    return x.shape if type(x) is Box else np.shape(x)


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


def unbox(x: Any) -> Any:
    """The plain value under any number of `Box` layers: a constant as far as the gradient goes.

    Allowed with `vjp`; a function (or rule) that unboxes a traced value is not replayed by
    `cached_vjp`, which would bake the value into its program.
    """
    if _reads is not None and isinstance(x, Box):
        _reads.append("unbox")
    return _unbox(x)


def _unbox(x: Any) -> Any:
    """`unbox` for the engine's own use: not a read `watching_reads` notes."""
    while isinstance(x, Box):
        x = x._value
    return x
