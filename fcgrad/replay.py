"""A tape recorded once and replayed: `cached_vjp`, the tape strategy's fast path.

`fcgrad.autodiff.vjp` records a fresh tape on every call: a `Box` and a `Node`
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
never on values, and an array `f` closes over is a constant of the recording.
Values `f` depends on must be arguments; those not differentiated (a batch's
targets, say) are boxed too, so numpy code on them raises instead of being baked
into the program. A VJP rule must likewise compute with primitives only (a mask
is a `nondiff_primitive`); a rule that computes an array from values with plain
numpy is detected, and that signature falls back to a fresh tape per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fcgrad.autodiff import (
    Box,
    Node,
    Primitive,
    Tape,
    _box_input,
    _children,
    _only,
    input_value,
    leaf_grad,
    rules_version,
    tree_flatten,
    unbox,
    vjp,
)
from fcgrad.errors import ShapeError

MAX_SIGNATURES = 8  # programs kept per function; a training loop needs two (full and last batch)

Pullback = Callable[..., tuple[Any, ...]]
Span = tuple[int, int, Callable[[list[Any]], Any]]  # an argument's leaves: start, stop, unflatten


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

    Slots 0 .. n_inputs-1 hold the input leaves (all arguments, flattened) and slot
    `cotangent` the output's cotangent; then come the constants the recording saw and
    one slot per step's output. `value` and `grads` (one per differentiated leaf)
    are slots. `safe` is False when a VJP rule computed an array outside the
    primitives, so that replaying would reuse a value of the recording.
    """

    def __init__(
        self,
        tape: Tape,
        inputs: list[Box],
        n_forward: int,
        value: Any,
        grads: list[Any],
        version: int,
    ) -> None:
        self.version = version  # `rules_version` when recorded
        self.n_inputs = len(inputs) - 1
        self.cotangent = self.n_inputs
        self.template: list[Any] = [None] * len(inputs)
        self._slot_of = {id(b.node): i for i, b in enumerate(inputs)}
        steps = [self._step(node) for node in tape.nodes]
        self.forward_steps, self.backward_steps = steps[:n_forward], steps[n_forward:]
        recorded = {id(c) for s in self.forward_steps for c in self._constants(s)}
        self.safe = all(
            id(c) in recorded for s in self.backward_steps for c in self._constants(s)
        ) and not any(type(g) is not Box and np.any(g) for g in grads)
        self.value = self._slot(value)
        self.grads = [self._slot(g) for g in grads]
        # slots a step may write straight into a caller's array: read by no step, and the
        # gradient of one leaf only
        read = {i for s in steps for i in s.args}
        self.writable = {s.out for s in self.backward_steps if self.grads.count(s.out) == 1} - read
        self._forward, self._forward_source = _compile(self.forward_steps, set(), "forward")
        self._backward, self._backward_source = _compile(
            self.backward_steps, self.writable, "backward"
        )
        del self._slot_of

    def _slot(self, value: Any) -> int:
        """The slot of a traced value, or a new constant slot for a plain one."""
        if type(value) is Box and id(value.node) in self._slot_of:
            return self._slot_of[id(value.node)]
        if type(value) is Box:
            raise TypeError("cached_vjp: f reads a value traced outside it; use vjp")
        self.template.append(value)
        return len(self.template) - 1

    def _step(self, node: Node) -> Step:
        assert node.prim is not None
        traced = dict(node.parents)
        args = tuple(
            self._slot_of[id(traced[i])] if i in traced else self._slot(a)
            for i, a in enumerate(node.args)
        )
        out = self._slot_of[id(node)] = len(self.template)
        self.template.append(None)
        return Step(node.prim, args, node.kwargs, out)

    def _constants(self, step: Step) -> list[Any]:
        """The arrays and numpy scalars among a step's constant arguments."""
        return [
            self.template[i]
            for i in step.args
            if i > self.n_inputs and isinstance(self.template[i], (np.ndarray, np.generic))
        ]

    def forward(self, leaves: list[Any]) -> list[Any]:
        """Every slot's value after the forward steps on new input leaves."""
        vals = self.template.copy()
        vals[: self.n_inputs] = leaves
        self._forward(vals, _NO_BUFFERS)
        return vals

    def backward(self, vals: list[Any], cotangent: Any, into: dict[int, np.ndarray]) -> list[Any]:
        """The gradient slots' values after the backward steps, from the output's `cotangent`.

        `into` maps gradient slots to arrays to write them into: directly when the step
        that computes one can write into an array (matmul) and nothing reads it later.
        """
        vals[self.cotangent] = cotangent
        self._backward(vals, into)
        return [vals[i] for i in self.grads]

    @property
    def source(self) -> str:
        """The Python code the steps were compiled to (one numpy call per line)."""
        return self._forward_source + "\n\n" + self._backward_source


_NO_BUFFERS: dict[int, np.ndarray] = {}


def _compile(
    steps: list[Step], writable: set[int], name: str
) -> tuple[Callable[[list[Any], dict[int, np.ndarray]], None], str]:
    """Steps as one straight-line Python function `name(v, o)` over the slot list `v`, with
    no interpreter loop: about 0.3 µs a step less, which at batch 64 is a tenth of a step.

    A step that computes a slot in `writable` writes into `o[slot]` when `o` has one.
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
    lines.append("    return None")
    source = "\n".join(lines)
    exec(compile(source, f"<fcgrad program: {name}>", "exec"), env)
    return env[name], source


def cached_vjp(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """`vjp` of `f` with respect to `args[argnums]`, traced once per signature and replayed.

    `cached_vjp(f, argnums)(*args)` returns `(value, pullback)` as `vjp` does, but
    `pullback(cotangent, *, into={i: array})` returns gradients for the arguments in
    `argnums` only (a tuple, in that order; `into` is keyed by argument number). The
    other arguments are inputs all the same, never constants. At most
    `MAX_SIGNATURES` programs are kept per function, the oldest dropped first; the
    returned function's `programs` attribute holds them by signature (a `Program`'s
    `source` is the code it runs).

    `f` must not branch on values, only on shapes and dtypes, and the arrays it
    closes over are constants (see the module's docstring). Unlike `vjp`, the
    inputs are not made read-only: call the pullback before changing them.
    Arguments that are themselves traced (higher order) use a fresh tape.

    Raises what `vjp` raises: TypeError for an argument or output that is not a
    number or array, ShapeError for a cotangent of the wrong shape.
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    programs: dict[Any, Program] = {}

    def vjp_of(*args: Any) -> tuple[Any, Pullback]:
        raw, leaves, key, spans = _flatten(args)
        program = programs.get(key) if key is not None else None
        if program is not None and program.version != rules_version[0]:
            program = None  # a rule changed since it was recorded
        if program is None and key is not None:
            program = programs[key] = _record(f, args, nums)
            if len(programs) > MAX_SIGNATURES:
                del programs[next(iter(programs))]
        if program is None or not program.safe:
            return _fresh_vjp(f, nums, args)
        return _run(program, raw, leaves, spans, nums)

    vjp_of.programs = programs  # type: ignore[attr-defined]  # by signature, to inspect
    return vjp_of


def _flatten(
    args: tuple[Any, ...],
) -> tuple[list[Any], list[Any], tuple[Any, ...] | None, list[Span]]:
    """The arguments' leaves as given and as traced (`input_value`), their signature (None
    if a leaf is traced by an outer `vjp`), and each argument's span of leaves."""
    raw: list[Any] = []
    key: list[Any] = []
    spans: list[Span] = []
    traced = False
    for a in args:
        start = len(raw)
        if type(a) is np.ndarray and a.dtype.kind == "f":  # the common case, made short
            raw.append(a)
            key.append((a.shape, a.dtype))
            spans.append((start, start + 1, _only))
            continue
        leaves, unflatten = tree_flatten(a)
        raw.extend(leaves)
        traced = traced or any(type(leaf) is Box for leaf in leaves)
        key.append(None if traced else treedef(a))
        spans.append((start, len(raw), unflatten))
    leaves = [input_value(leaf) for leaf in raw]
    return raw, leaves, None if traced else tuple(key), spans


def treedef(tree: Any) -> Any:
    """A hashable description of a pytree's structure, shapes and dtypes (a program's key)."""
    if type(tree) is np.ndarray:
        return (tree.shape, tree.dtype)
    node = _children(tree)
    if node is None:
        return (type(tree), np.shape(tree), np.result_type(tree))
    labels, children, _ = node
    return (type(tree), tuple(labels), tuple(treedef(c) for c in children))


def _record(f: Callable[..., Any], args: tuple[Any, ...], nums: tuple[int, ...]) -> Program:
    """Trace f's forward pass and its pullback on one outer tape (see the module docstring)."""
    version = rules_version[0]
    tape = Tape()
    inputs: list[Box] = []
    boxed = []
    for arg in args:
        leaves, unflatten = tree_flatten(arg)
        mine = [_box_input(leaf, tape) for leaf in leaves]
        inputs.extend(mine)
        boxed.append(unflatten(mine))
    value, pullback = _fresh_vjp(f, nums, tuple(boxed))
    n_forward = len(tape.nodes)
    cotangent = _box_input(np.ones_like(unbox(value)), tape)
    grads = [leaf for g in pullback(cotangent) for leaf in tree_flatten(g)[0]]
    return Program(tape, [*inputs, cotangent], n_forward, value, grads, version)


def _run(
    program: Program, raw: list[Any], leaves: list[Any], spans: list[Span], nums: tuple[int, ...]
) -> tuple[Any, Pullback]:
    vals = program.forward(leaves)
    value = vals[program.value]
    shape = _shape(value)

    def pullback(cotangent: Any, *, into: dict[int, np.ndarray] | None = None) -> tuple[Any, ...]:
        if _shape(cotangent) != shape:
            raise ShapeError(
                f"pullback: cotangent shape {np.shape(cotangent)} != output shape {shape}"
            )
        slots = _into_slots(program, into, raw, spans, nums) if into else None
        flat = program.backward(vals.copy(), cotangent, slots or {})
        grads = []
        k = 0
        for argnum in nums:
            start, stop, unflatten = spans[argnum]
            n = stop - start
            grad = unflatten([leaf_grad(raw[start + i], flat[k + i]) for i in range(n)])
            k += n
            buf = into.get(argnum) if into else None
            if buf is not None and grad is not buf:  # computed elsewhere: copied in
                np.copyto(buf, grad)
                grad = buf
            grads.append(grad)
        return tuple(grads)

    return value, pullback


def _shape(x: Any) -> tuple[int, ...]:
    return x.shape if type(x) is np.ndarray else np.shape(x)


def _into_slots(
    program: Program,
    into: dict[int, np.ndarray],
    raw: list[Any],
    spans: list[Span],
    nums: tuple[int, ...],
) -> dict[int, np.ndarray]:
    """Map `pullback(into={argnum: array})` to gradient slots; ShapeError for a buffer that
    does not match its argument (a differentiated array argument, same shape and dtype)."""
    slots = {}
    for argnum, buf in into.items():
        start, stop, _ = spans[argnum] if 0 <= argnum < len(spans) else (0, 0, None)
        arg = raw[start] if stop == start + 1 else None
        if (
            argnum not in nums
            or type(arg) is not np.ndarray
            or buf.shape != arg.shape
            or (buf.dtype != arg.dtype)
        ):
            raise ShapeError(
                f"pullback: into[{argnum}] must be an array shaped like argument {argnum}"
            )
        k = sum(spans[i][1] - spans[i][0] for i in nums[: nums.index(argnum)])
        slots[program.grads[k]] = buf
    return slots


def _fresh_vjp(
    f: Callable[..., Any], nums: tuple[int, ...], args: tuple[Any, ...]
) -> tuple[Any, Pullback]:
    """`vjp` on a fresh tape with respect to args[nums], the other arguments held fixed."""

    def g(*diff: Any) -> Any:
        full = list(args)
        for i, d in zip(nums, diff):
            full[i] = d
        return f(*full)

    value, pull = vjp(g, *(args[i] for i in nums))

    def pullback(cotangent: Any, *, into: dict[int, np.ndarray] | None = None) -> tuple[Any, ...]:
        if into and any(k not in nums for k in into):
            raise ShapeError(f"pullback: into keys must be among the differentiated {nums}")
        return pull(cotangent, into={nums.index(k): v for k, v in (into or {}).items()} or None)

    return value, pullback
