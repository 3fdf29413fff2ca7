"""The tape core: primitives with their VJP rules, and the tape a trace records them on.

A `Primitive` called on a `Box` appends a `Node` to the box's `Tape` (`_record`);
`rules_version` counts changes to primitives, so that recorded programs
(`fcgrad.engine.replay`) are recorded again. `hold` and each tape keep the arrays that a
later backward pass reads read-only until they are collected. The backward pass and the
public API are in `fcgrad.engine.autodiff`; traced values (`Box`) in `fcgrad.engine.traced`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine.traced import Box

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


# ----------------------------------------------------------------------------- recording


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
