"""Traced values: `Box`, and what user code may and may not do with one.

A `Box` wraps a value being traced. Reading its value (`.value`, `unbox`, `float`, ...)
is noted while `watching_reads` runs; numpy functions, comparisons and truth tests on it
raise `TracedValueError` naming the `fcgrad.ops` op to use. `shape_of` is np.shape for
arrays and boxes alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from fcgrad.errors import TracedValueError

if TYPE_CHECKING:
    from fcgrad.engine.tape import Node, Tape


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

    # The arithmetic dunders are attached in fcgrad.ops (`ops/operators.py`), beside the ops.


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
    from fcgrad.engine import ops, tape

    name = _OP_NAMES.get(numpy_name, numpy_name)
    fn = getattr(ops, name, None)
    return fn if isinstance(fn, tape.Primitive) or name in getattr(ops, "__all__", ()) else None


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


def shape_of(x: Any) -> tuple[int, ...]:
    """np.shape, without numpy's dispatch for the common case of an array (a hot path)."""
    if type(x) is np.ndarray:
        shape: tuple[int, ...] = x.shape
        return shape
    return x.shape if type(x) is Box else np.shape(x)


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
