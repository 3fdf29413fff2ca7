"""A tape recorded once and replayed: `cached_vjp`, the tape strategy's fast path.

`fcgrad.engine.autodiff.vjp` records a fresh tape on every call: a `Box` and a `Node`
per primitive call, and in the backward pass each VJP rule's own Python (shape
checks, unbroadcasting, dispatch). At batch 64, where the matrix products take a
few microseconds, that bookkeeping costs as much as the arithmetic. Yet a
network's tape is the same on every step: the same primitives on arrays of the
same shapes.

`cached_vjp(f)` therefore traces `f` *and its backward pass* once per signature
(the arguments' tree structure, shapes and dtypes), the way JAX traces a
`jax.vjp` under `jax.jit`: the arguments and the output's cotangent are boxed on
an outer tape, `vjp` runs inside it, and since the VJP rules are written with the
primitives, the outer tape records every primitive call of the forward pass and
of the backward pass. What is left is a straight-line program of numpy calls over
numbered slots, with every Python decision of the rules already taken. Later
calls run its forward steps on the new arrays, and the pullback runs its backward
steps: the same numpy calls in the same order as `vjp`, so the same results, bit
for bit.

The price is the contract of `jax.jit`: `f` may branch on shapes and dtypes,
never on values, and an array `f` closes over is part of the recording (by
reference: changed in place it is seen, another array bound to its name is not).
Values `f` depends on must be arguments; those not differentiated (a batch's
targets, say) are boxed too, so numpy code on them fails to record instead of
being baked into the program (the signature then runs on fresh tapes, with a
`ReplayWarning`). VJP rules must likewise compute with primitives (a mask is a
`nondiff_primitive`).

A branch on a value is never baked into a program. A traced value has no truth
value, and comparing one or calling numpy on one raises `TracedValueError`; to
branch, code must read the value, and a read by `f` or by a rule while a program
is recorded (`.value`, `unbox`, `float`, `int`, `repr` or `format` of a box:
`autodiff.watching_reads`) makes the signature run on fresh tapes, where reading
is allowed, with a `ReplayWarning` naming the read. As a guard against what reads
no value yet is no function of the arguments (a random number, a global that
changes), each new signature is traced twice, the second time on other values
(`_other_values`); if the two programs differ in any constant or step, the
signature is not replayed either.

From the call until its pullback is garbage-collected, the arrays a program
reads from outside it (the array inputs, and the arrays `f` closes over) are
read-only (`autodiff.hold`, shared with `vjp`'s tapes): changing one in place in
between raises numpy's ValueError ("... is read-only"), as with `vjp`,
instead of giving the old point's value with the new point's gradient. (The
function's `value_and_grad`, which calls the pullback at once, and `value` hold
nothing: a training step pays nothing for it.)

`Program` and `Step` are in `fcgrad.engine.program`, the recording (`_trace`, the second
recording on `_other_values`, `ReplayWarning`) in `fcgrad.engine.recording`; this module
keeps the programs per signature and runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import numpy as np

from fcgrad.engine.autodiff import (
    Box,
    check_into,
    hold,
    input_value,
    leaf_grad,
    rules_version,
    shape_of,
)
from fcgrad.engine.program import _NO_BUFFERS, Program, Step, _copy
from fcgrad.engine.pytree import _children, _only, tree_flatten
from fcgrad.engine.recording import (
    NotReplayed,
    Pullback,
    ReplayWarning,
    _fresh_vjp,
    _record,
)
from fcgrad.engine.traced import _unbox
from fcgrad.errors import ConfigError, ShapeError

# the API, with what it re-exports from `program` and `recording`
__all__ = [
    "MAX_SIGNATURES",
    "CachedVJP",
    "NotReplayed",
    "Program",
    "Pullback",
    "ReplayWarning",
    "Step",
    "cached_vjp",
    "treedef",
]

MAX_SIGNATURES = 8  # programs kept per function; a training loop needs two (full and last batch)

Span = tuple[int, int, Callable[[list[Any]], Any]]  # an argument's leaves: start, stop, unflatten


class CachedVJP(Protocol):
    """What `cached_vjp` returns: `vjp` of a function, replayed (see `cached_vjp`)."""

    programs: dict[Any, Program | NotReplayed]

    def __call__(self, *args: Any) -> tuple[Any, Pullback]: ...

    def value(self, *args: Any) -> Any: ...

    def value_and_grad(
        self, *args: Any, into: dict[int, np.ndarray] | None = None
    ) -> tuple[Any, tuple[Any, ...]]: ...


# ----------------------------------------------------------------------------- calling


def cached_vjp(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> CachedVJP:
    """`vjp` of `f` with respect to `args[argnums]`, traced once per signature and replayed.

    `cached_vjp(f, argnums)(*args)` returns `(value, pullback)` as `vjp` does, but
    `pullback(cotangent, *, into={i: array})` returns gradients for the arguments in
    `argnums` only (a tuple, in that order; `into` is keyed by argument number). The
    other arguments are inputs all the same, never constants; to be recorded they
    must be numbers or arrays (trees of them). A new signature is traced twice (see
    the module's docstring), so `f` should have no side effects. At most
    `MAX_SIGNATURES` programs are kept per function, the least recently used dropped
    first; the returned function's `programs` attribute holds them by signature (a
    `Program`'s `source` is the code it runs). Its `value(*args)` is the forward pass
    alone, and its `value_and_grad(*args, into=None)` the value and the pullback of a
    cotangent of ones, in one call (a training step).

    `f` must not branch on values, only on shapes and dtypes: a signature whose
    recording reads a traced value (`.value`, `unbox`, `float`, ... in `f` or a
    rule) is not replayed. The arrays `f` closes over are part of the recording,
    held by reference (see the module's docstring). As with `vjp`, the array inputs
    and the arrays `f` closes over are read-only from the call until the pullback is
    garbage-collected: drop the pullback before changing them in place. Traced
    arguments or cotangents (higher order) use a fresh tape.

    A signature that cannot be recorded, that reads a traced value, or whose second
    recording differs runs on a fresh tape each call, as `vjp` does, after a
    `ReplayWarning` naming the reason.

    Raises what `vjp` raises: TypeError for an argument or output that is not a
    number or array, ShapeError for a cotangent of the wrong shape or an `into`
    array unlike its argument; ConfigError for repeated or negative `argnums` and an
    `into` array that shares memory with an input.
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if len(set(nums)) != len(nums) or min(nums, default=0) < 0:
        raise ConfigError(f"cached_vjp: argnums must be distinct and 0 or more, got {nums}")
    programs: dict[Any, Program | NotReplayed] = {}

    def call(args: tuple[Any, ...], held: bool) -> tuple[Any, Pullback]:
        given, leaves, key, spans = _flatten(args, nums)
        if key is None:
            return _fresh_vjp(f, nums, args)
        program = programs.pop(key, None)
        if program is None or program.version != rules_version[0]:  # new, or a rule changed
            program = _record(f, args, nums)
            if len(programs) >= MAX_SIGNATURES:
                del programs[next(iter(programs))]
        programs[key] = program  # (last: the most recently used)
        if isinstance(program, NotReplayed):
            return _fresh_vjp(f, nums, args)
        return _run(program, f, args, given, leaves, spans, nums, held)

    def vjp_of(*args: Any) -> tuple[Any, Pullback]:
        return call(args, True)

    def value(*args: Any) -> Any:
        """f(*args), replayed: the forward pass alone, holding nothing read-only."""
        return call(args, False)[0]

    def value_and_grad(
        *args: Any, into: dict[int, np.ndarray] | None = None
    ) -> tuple[Any, tuple[Any, ...]]:
        """`(value, pullback(ones_like(value), into=into))` in one call (for a scalar f: its
        gradients). Nothing runs between the two passes, so nothing is held read-only."""
        out, pullback = call(args, False)
        return out, pullback(_ones_like(_unbox(out) if type(out) is Box else out), into=into)

    cached = cast(CachedVJP, vjp_of)
    cached.programs = programs
    cached.value = value  # type: ignore[method-assign]
    cached.value_and_grad = value_and_grad  # type: ignore[method-assign]
    return cached


def _ones_like(value: Any) -> Any:
    """np.ones_like(value), a new array; for the usual scalar loss a fifth of its cost."""
    if type(value) in (np.float32, np.float64, np.ndarray) and value.ndim == 0:
        return np.array(1, dtype=value.dtype)
    return np.ones_like(value)


def _flatten(
    args: tuple[Any, ...], nums: tuple[int, ...]
) -> tuple[list[Any], list[Any], tuple[Any, ...] | None, list[Span]]:
    """The arguments' leaves as given and as traced (`input_value` for the differentiated),
    their signature (None if a leaf is traced by an outer `vjp`), and each argument's span
    of leaves."""
    given: list[Any] = []
    key: list[Any] = []
    spans: list[Span] = []
    traced = False
    plain = True  # every argument a float array, traced as it is
    for a in args:
        start = len(given)
        if type(a) is np.ndarray and a.dtype.kind == "f":  # the common case, made short
            given.append(a)
            key.append((a.shape, a.dtype))
            spans.append((start, start + 1, _only))
            continue
        plain = False
        leaves, unflatten = tree_flatten(a)
        given.extend(leaves)
        traced = traced or any(type(leaf) is Box for leaf in leaves)
        key.append(None if traced else treedef(a))
        spans.append((start, len(given), unflatten))
    if plain:
        return given, given, tuple(key), spans
    diff = {i for n in nums for i in range(spans[n][0], spans[n][1])}
    leaves = [input_value(x) if i in diff else x for i, x in enumerate(given)]
    return given, leaves, None if traced else tuple(key), spans


def treedef(tree: Any) -> Any:
    """A hashable description of a pytree's structure, shapes and dtypes (a program's key)."""
    if type(tree) is np.ndarray:
        return (tree.shape, tree.dtype)
    node = _children(tree)
    if node is None:
        return (type(tree), np.shape(tree), np.result_type(tree))
    labels, children, _ = node
    return (type(tree), tuple(labels), tuple(treedef(c) for c in children))


def _run(
    program: Program,
    f: Callable[..., Any],
    args: tuple[Any, ...],
    given: list[Any],
    leaves: list[Any],
    spans: list[Span],
    nums: tuple[int, ...],
    held: bool,
) -> tuple[Any, Pullback]:
    """Replay `program` on `leaves`; with `held`, the inputs and the arrays f closes over are
    read-only until the pullback is garbage-collected (without: the caller calls it at once)."""
    holding = hold(*leaves, *program.constants) if held else None
    vals = program.forward(leaves)
    value = vals[program.value]
    if program.value in program.fresh:
        value = _copy(value)
    elif program.freeze_value and type(value) is np.ndarray:
        value.setflags(write=False)
    shape = shape_of(value)

    def pullback(cotangent: Any, *, into: dict[int, np.ndarray] | None = None) -> tuple[Any, ...]:
        _ = holding  # (the closure keeps the hold)
        if type(cotangent) is Box:  # differentiated itself (higher order): a fresh tape
            return _fresh_vjp(f, nums, args)[1](cotangent, into=into)
        if shape_of(cotangent) != shape:
            raise ShapeError(
                f"pullback: cotangent shape {np.shape(cotangent)} != output shape {shape}"
            )
        direct = _into_slots(program, into, given, spans, nums) if into else _NO_BUFFERS
        flat = program.backward(vals.copy(), cotangent, direct)
        grads = []
        k = 0
        for argnum in nums:
            start, stop, unflatten = spans[argnum]
            grad = unflatten([leaf_grad(given[i], flat[k + i - start]) for i in range(start, stop)])
            k += stop - start
            buf = into.get(argnum) if into else None
            if buf is not None and grad is not buf:  # not written in place: copied in
                np.copyto(buf, grad)
                grad = buf
            grads.append(grad)
        return tuple(grads)

    return value, pullback


def _into_slots(
    program: Program,
    into: dict[int, np.ndarray],
    given: list[Any],
    spans: list[Span],
    nums: tuple[int, ...],
) -> dict[int, np.ndarray]:
    """The gradient slots to write straight into `into`'s arrays (the C-contiguous ones);
    ShapeError for an array unlike its argument, ConfigError for one that overlaps an input."""
    direct = {}
    for argnum, buf in into.items():
        start, stop, _ = spans[argnum] if argnum in nums else (0, 0, None)
        check_into(argnum, buf, given[start] if stop == start + 1 else None)
        if any(isinstance(x, np.ndarray) and np.may_share_memory(buf, x) for x in given):
            raise ConfigError(f"pullback: into[{argnum}] shares memory with an argument of f")
        if buf.flags.c_contiguous:
            k = sum(spans[i][1] - spans[i][0] for i in nums[: nums.index(argnum)])
            direct[program.grads[k]] = buf
    return direct
