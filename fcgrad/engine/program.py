"""What `cached_vjp` replays: a `Program`, a function's forward and backward pass as two
straight-line lists of `Step`s (numpy calls over numbered slots), compiled to Python.

`fcgrad.engine.recording` makes programs from a traced tape; `fcgrad.engine.replay`
runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import Primitive

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
