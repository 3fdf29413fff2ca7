"""Recording a `Program`: `f`'s forward pass and its pullback traced on one outer tape
(`_trace`), twice on other values as a guard (`_record`), or why a signature is not
replayed (`NotReplayed`, with a `ReplayWarning`); and `_fresh_vjp`, the plain `vjp` such a
signature runs on instead. See `fcgrad.engine.replay`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import (
    Box,
    Node,
    Tape,
    _box_input,
    holding_fixed,
    is_number,
    rules_version,
    vjp,
    watching_reads,
)
from fcgrad.engine.program import _COTANGENT, Program, Step
from fcgrad.engine.pytree import tree_flatten
from fcgrad.engine.traced import _unbox
from fcgrad.errors import ShapeError

Pullback = Callable[..., tuple[Any, ...]]


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
