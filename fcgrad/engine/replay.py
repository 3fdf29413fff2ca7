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
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import numpy as np

from fcgrad.engine.autodiff import (
    Box,
    Node,
    Primitive,
    Tape,
    _box_input,
    _unbox,
    check_into,
    hold,
    holding_fixed,
    input_value,
    is_number,
    leaf_grad,
    rules_version,
    shape_of,
    vjp,
    watching_reads,
)
from fcgrad.engine.pytree import _children, _only, tree_flatten
from fcgrad.errors import ConfigError, ShapeError

MAX_SIGNATURES = 8  # programs kept per function; a training loop needs two (full and last batch)

Pullback = Callable[..., tuple[Any, ...]]
Span = tuple[int, int, Callable[[list[Any]], Any]]  # an argument's leaves: start, stop, unflatten
Compiled = Callable[[list[Any], dict[int, np.ndarray]], None]


class Step:
    """One primitive call: `slots[out] = prim.fwd(*(slots[i] for i in args), **kwargs)`."""

    __slots__ = ("args", "kwargs", "out", "prim")

    def __init__(self, prim: Primitive, args: tuple[int, ...], kwargs: dict[str, Any], out: int):
        self.prim = prim
        self.args = args
        self.kwargs = kwargs
        self.out = out


class Program:
    """A function's forward and backward pass as two straight-line lists of `Step`s.

    `template` is the initial slot list: the input leaves (slots 0 .. n_inputs-1,
    all arguments flattened, empty here), the output's cotangent (slot `cotangent`),
    the constants the recording saw, and one slot per step's output. `value` and
    `grads` (one per differentiated leaf) are slots; `fresh` are the gradient slots
    holding a constant (the zeros of a leaf the output does not depend on), which
    are copied for each caller (as is a constant `value`).
    """

    def __init__(
        self,
        template: list[Any],
        steps: tuple[list[Step], list[Step]],
        value: int,
        grads: list[int],
        version: int,
    ) -> None:
        self.template = template
        self.n_inputs = template.index(_COTANGENT)
        self.cotangent = self.n_inputs
        self.forward_steps, self.backward_steps = steps
        self.value, self.grads = value, grads
        self.version = version  # `rules_version` when recorded
        outputs = {s.out for s in (*self.forward_steps, *self.backward_steps)}
        self.fresh = {i for i in (value, *grads) if i > self.cotangent and i not in outputs}
        # the value is made read-only when the backward pass reads it (as vjp freezes it)
        self.freeze_value = value in outputs and any(value in s.args for s in self.backward_steps)
        read = {i for s in (*self.forward_steps, *self.backward_steps) for i in s.args}
        # the arrays f closes over (and the rules' constants), held read-only with the inputs
        self.constants = [
            template[i]
            for i in sorted(read)
            if i > self.cotangent and type(template[i]) is np.ndarray
        ]
        # steps that may write straight into a caller's array: their output is one leaf's
        # gradient and is read by no other step
        writable = {s.out for s in self.backward_steps if grads.count(s.out) == 1} - read
        dead = self._dead_after()
        n = len(self.forward_steps)
        self._forward, self._forward_source = _compile(
            self.forward_steps, set(), dead[:n], "forward"
        )
        self._backward, self._backward_source = _compile(
            self.backward_steps, writable, dead[n:], "backward"
        )

    def _dead_after(self) -> list[list[int]]:
        """For each step (forward, then backward), the step outputs no later step reads and
        the caller does not get: freed right there, so that a full-batch pass holds no
        more intermediate arrays than it needs."""
        steps = self.forward_steps + self.backward_steps
        last: dict[int, int] = {s.out: k for k, s in enumerate(steps)}  # unread: freed at once
        for k, step in enumerate(steps):
            for i in step.args:
                if i in last:
                    last[i] = k
        for i in (self.value, *self.grads):
            last.pop(i, None)
        dead: list[list[int]] = [[] for _ in steps]
        for i, k in last.items():
            dead[k].append(i)
        return dead

    def forward(self, leaves: list[Any]) -> list[Any]:
        """Every slot's value after the forward steps on new input leaves."""
        vals = self.template.copy()
        vals[: self.n_inputs] = leaves
        self._forward(vals, _NO_BUFFERS)
        return vals

    def backward(self, vals: list[Any], cotangent: Any, into: dict[int, np.ndarray]) -> list[Any]:
        """The gradient slots' values after the backward steps, from the output's `cotangent`.

        `into` maps gradient slots to C-contiguous arrays that the step computing the slot
        writes into, where it can (matmul) and nothing else reads the slot.
        """
        vals[self.cotangent] = cotangent
        self._backward(vals, into)
        return [_copy(vals[i]) if i in self.fresh else vals[i] for i in self.grads]

    def same_as(self, other: Program) -> bool:
        """Whether two recordings are the same program: steps, slots and constants."""
        mine = self.forward_steps + self.backward_steps
        theirs = other.forward_steps + other.backward_steps
        return (
            (len(self.forward_steps), len(mine), self.value, self.grads)
            == (len(other.forward_steps), len(theirs), other.value, other.grads)
            and _same(self.template, other.template)
            and all(_same_step(a, b) for a, b in zip(mine, theirs))
        )

    @property
    def source(self) -> str:
        """The Python code the steps were compiled to (one numpy call per line)."""
        return self._forward_source + "\n\n" + self._backward_source


_COTANGENT = object()  # the cotangent's place in a template


def _copy(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x


_NO_BUFFERS: dict[int, np.ndarray] = {}


def _same_step(a: Step, b: Step) -> bool:
    return (a.prim, a.args, a.out) == (b.prim, b.args, b.out) and _same(a.kwargs, b.kwargs)


def _same(a: Any, b: Any) -> bool:
    """Equal constants of two recordings: same type, and equal values (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (np.ndarray, np.generic)):
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a is b or a == b)


def _compile(
    steps: list[Step], writable: set[int], dead: list[list[int]], name: str
) -> tuple[Compiled, str]:
    """Steps as one straight-line Python function `name(v, o)`: `v` is the slot list, `o`
    maps slots to arrays to write into. With no interpreter loop a step costs about
    0.3 µs less, which at batch 64 is a tenth of a training step.

    A step whose output is in `writable` and whose primitive has a `fwd_into` writes
    into `o[slot]` when `o` has one. After step k, the slots `dead[k]` are emptied.
    """
    env: dict[str, Any] = {}
    lines = [f"def {name}(v, o):"]
    for k, step in enumerate(steps):
        env[f"f{k}"], env[f"kw{k}"] = step.prim.fwd, step.kwargs
        call = ", ".join([*(f"v[{i}]" for i in step.args), *([f"**kw{k}"] if step.kwargs else [])])
        if step.out in writable and step.prim.fwd_into is not None:
            env[f"into{k}"] = step.prim.fwd_into
            lines.append(f"    b = o.get({step.out})")
            lines.append(
                f"    v[{step.out}] = f{k}({call}) if b is None else into{k}({call}, out=b)"
                f"  # {step.prim.name}"
            )
        else:
            lines.append(f"    v[{step.out}] = f{k}({call})  # {step.prim.name}")
        if dead[k]:
            lines.append("    " + " = ".join(f"v[{i}]" for i in dead[k]) + " = None")
    lines.append("    return None")
    source = "\n".join(lines)
    exec(compile(source, f"<fcgrad program: {name}>", "exec"), env)
    return env[name], source


# ----------------------------------------------------------------------------- recording


class _Recorder:
    """Turns an outer tape, holding a forward and a backward pass, into a `Program`."""

    def __init__(self, inputs: list[Box], cotangent: Box) -> None:
        self.template: list[Any] = [None] * len(inputs) + [_COTANGENT]
        self.slot_of = {id(b.node): i for i, b in enumerate([*inputs, cotangent])}

    def program(
        self, tape: Tape, n_forward: int, value: Any, grads: list[Any], version: int
    ) -> Program:
        steps = [self.step(node) for node in tape.nodes]
        value_slot, grad_slots = self.slot(value), [self.slot(g) for g in grads]
        return Program(
            self.template, (steps[:n_forward], steps[n_forward:]), value_slot, grad_slots, version
        )

    def slot(self, value: Any) -> int:
        """The slot of a value traced on the tape, or a new constant slot for a plain one."""
        if type(value) is Box and id(value.node) in self.slot_of:
            return self.slot_of[id(value.node)]
        if type(value) is Box:
            raise TypeError("cached_vjp: f reads a value traced outside it; use vjp")
        self.template.append(value)
        return len(self.template) - 1

    def step(self, node: Node) -> Step:
        assert node.prim is not None
        traced = dict(node.parents)
        args = tuple(
            self.slot_of[id(traced[i])] if i in traced else self.slot(a)
            for i, a in enumerate(node.args)
        )
        out = self.slot_of[id(node)] = len(self.template)
        self.template.append(None)
        return Step(node.prim, args, node.kwargs, out)


def _trace(f: Callable[..., Any], args: tuple[Any, ...], nums: tuple[int, ...]) -> Program:
    """Trace f's forward pass and its pullback on one outer tape (see the module docstring).

    The outer tape is only ever replayed, never differentiated: its inputs need no
    gradient, so primitives without a rule for an argument that is not differentiated
    record there as they run under `vjp`.
    """
    version = rules_version[0]
    tape = Tape()
    inputs: list[Box] = []
    boxed = []
    for argnum, arg in enumerate(args):
        leaves, unflatten = tree_flatten(arg)
        mine = [
            _box_input(leaf, tape) if argnum in nums else _box_as_is(leaf, tape) for leaf in leaves
        ]
        for box in mine:
            box.node.needs_grad = False
        inputs.extend(mine)
        boxed.append(unflatten(mine))
    reader = "f"  # who read a value, if one is read: f in the forward pass, a rule after it
    with watching_reads() as reads:
        try:
            value, pullback = _fresh_vjp(f, nums, tuple(boxed))
            n_forward = len(tape.nodes)
            if not reads:
                reader = "a VJP rule"
            cotangent = _box_input(np.ones_like(_unbox(value)), tape)
            grads = [leaf for g in pullback(cotangent) for leaf in tree_flatten(g)[0]]
        except Exception as exc:
            if reads:
                raise _ReadValue(reader, reads[0]) from exc
            raise
    if reads:
        raise _ReadValue(reader, reads[0])
    return _Recorder(inputs, cotangent).program(tape, n_forward, value, grads, version)


class _ReadValue(Exception):
    """`f` or a VJP rule read a traced value while a program was recorded."""

    def __init__(self, reader: str, how: str) -> None:
        super().__init__(
            f"{reader} read a traced value ({how}): the value, or a branch on it, would be "
            "baked into the program"
        )


def _box_as_is(leaf: Any, tape: Tape) -> Box:
    """A non-differentiated input, boxed without `input_value`'s conversion of integers (so
    that a Python int stays a weak scalar, as in `vjp`)."""
    if not is_number(leaf):
        raise TypeError(
            f"cached_vjp: an argument not differentiated is a {type(leaf).__name__}; pass "
            "numbers and arrays, and close over anything else"
        )
    return Box(leaf, tape, Node(None, (), {}, leaf, ()))


@dataclasses.dataclass(frozen=True)
class NotReplayed:
    """Why a signature runs on a fresh tape each call instead of a program."""

    reason: str
    version: int  # `rules_version` when decided


class CachedVJP(Protocol):
    """What `cached_vjp` returns: `vjp` of a function, replayed (see `cached_vjp`)."""

    programs: dict[Any, Program | NotReplayed]

    def __call__(self, *args: Any) -> tuple[Any, Pullback]: ...

    def value(self, *args: Any) -> Any: ...

    def value_and_grad(
        self, *args: Any, into: dict[int, np.ndarray] | None = None
    ) -> tuple[Any, tuple[Any, ...]]: ...


class ReplayWarning(RuntimeWarning):
    """A signature of a `cached_vjp` function cannot be replayed: it runs on fresh tapes."""


def _record(
    f: Callable[..., Any], args: tuple[Any, ...], nums: tuple[int, ...]
) -> Program | NotReplayed:
    """A program for these arguments' signature, or why there is none (also warned, as a
    `ReplayWarning`): `f` or a rule read a traced value, recording the pullback raised
    (`vjp` raises it when the pullback is called), or a second recording on other values
    differed or raised."""
    version = rules_version[0]
    try:
        program = _trace(f, args, nums)
        with np.errstate(all="ignore"):
            again = _trace(f, tuple(_other_values(a) for a in args), nums)
    except _ReadValue as exc:
        reason = str(exc)
    except Exception as exc:
        vjp(holding_fixed(f, args, nums), *(args[i] for i in nums))  # the forward's own error
        reason = f"recording raised {type(exc).__name__}: {exc}"
    else:
        if program.same_as(again):
            return program
        reason = (
            "a second recording on other values differed: f or a rule depends on something "
            "besides the arguments (a random number, a global)"
        )
    warnings.warn(f"cached_vjp: {reason}; it runs on a fresh tape", ReplayWarning, stacklevel=4)
    return NotReplayed(reason, version)


def _other_values(tree: Any) -> Any:
    """The same structure, shapes and dtypes with other values: floats become 0.25 - 1.5 x
    with the rows reversed (no value is its own image but 0.1), integer arrays are only
    reversed (to stay in their range) and a Python int grows by one."""
    leaves, unflatten = tree_flatten(tree)
    out = []
    for x in leaves:
        if not is_number(x):
            out.append(x)
        elif isinstance(x, int) and not isinstance(x, np.generic):
            out.append(x + 1)  # (not negative: it may meet unsigned arrays)
        elif np.result_type(x).kind not in "fc":  # integers and flags: only moved
            out.append(x[::-1] if isinstance(x, np.ndarray) and x.ndim else x)
        else:
            a = np.asarray(x)
            other = (0.25 - 1.5 * a[::-1] if a.ndim else 0.25 - 1.5 * a).astype(a.dtype)
            out.append(other if isinstance(x, np.ndarray) else type(x)(other))
    return unflatten(out)


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
        return out, pullback(np.ones_like(_unbox(out) if type(out) is Box else out), into=into)

    cached = cast(CachedVJP, vjp_of)
    cached.programs = programs
    cached.value = value  # type: ignore[method-assign]
    cached.value_and_grad = value_and_grad  # type: ignore[method-assign]
    return cached


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


def _fresh_vjp(
    f: Callable[..., Any], nums: tuple[int, ...], args: tuple[Any, ...]
) -> tuple[Any, Pullback]:
    """`vjp` on a fresh tape with respect to args[nums], the other arguments held fixed."""

    value, pull = vjp(holding_fixed(f, args, nums), *(args[i] for i in nums))

    def pullback(cotangent: Any, *, into: dict[int, np.ndarray] | None = None) -> tuple[Any, ...]:
        if into and any(k not in nums for k in into):
            raise ShapeError(f"pullback: into keys must be among the differentiated {nums}")
        return pull(cotangent, into={nums.index(k): v for k, v in (into or {}).items()} or None)

    return value, pullback
