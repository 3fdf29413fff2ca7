"""Pytrees: nested tuples, lists, dicts and dataclass instances of arrays and numbers.

`tree_flatten` splits one into its leaves and a function that rebuilds it from new
leaves (`fcgrad.engine.autodiff` boxes the leaves of its arguments and gives gradients the
arguments' structure); `tree_paths` names each leaf (`params.layers[0].w`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

_FIELDS: dict[type, list[str]] = {}  # dataclass -> its field names (dataclasses.fields is slow)


def _children(tree: Any) -> tuple[list[str], list[Any], Callable[[list[Any]], Any]] | None:
    """(labels, children, rebuild) of a container node; None for a leaf.

    Containers: tuple (namedtuples too), list, dict (by sorted key) and dataclass
    instances (by field). Labels are how a path names each child: `[0]`, `['k']`, `.w`.
    """
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple
        return [f".{n}" for n in tree._fields], list(tree), lambda xs: type(tree)(*xs)
    if isinstance(tree, (tuple, list)):
        return [f"[{i}]" for i in range(len(tree))], list(tree), lambda xs: type(tree)(xs)
    if isinstance(tree, dict):  # keys in a fixed order, so equal dicts flatten alike
        keys = sorted(tree, key=lambda k: (type(k).__name__, repr(k)))
        return [f"[{k!r}]" for k in keys], [tree[k] for k in keys], lambda xs: dict(zip(keys, xs))
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        cls = type(tree)
        names = _FIELDS.get(cls) or _FIELDS.setdefault(
            cls, [f.name for f in dataclasses.fields(tree)]
        )
        children = [getattr(tree, n) for n in names]
        return [f".{n}" for n in names], children, lambda xs: _replace_fields(tree, names, xs)
    return None


def _replace_fields(obj: Any, names: list[str], values: list[Any]) -> Any:
    """A shallow copy of dataclass `obj` with new field values, without calling __init__ (so
    frozen classes, init=False fields and __post_init__ checks of the original all work)."""
    if hasattr(obj, "__dict__"):  # the common case, several times faster than copy.copy
        new = object.__new__(type(obj))
        new.__dict__.update(obj.__dict__)
    else:
        new = copy.copy(obj)
    for name, value in zip(names, values):
        object.__setattr__(new, name, value)
    return new


def tree_flatten(tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """Split a pytree into its leaves and a function that rebuilds it from new leaves.

    Containers are those of `_children`; everything else is a leaf.
    """
    node = None if type(tree) is np.ndarray else _children(tree)
    if node is None:
        return [tree], _only
    _, children, rebuild = node
    leaves: list[Any] = []
    spans = []
    for child in children:
        child_leaves, child_unflatten = tree_flatten(child)
        spans.append((len(leaves), len(leaves) + len(child_leaves), child_unflatten))
        leaves.extend(child_leaves)

    def unflatten(new: list[Any]) -> Any:
        return rebuild([un(new[a:b]) for a, b, un in spans])

    return leaves, unflatten


def _only(leaves: list[Any]) -> Any:
    return leaves[0]


def tree_paths(tree: Any, prefix: str = "") -> list[str]:
    """The path of every leaf, in `tree_flatten` order: e.g. `params.layers[0].w`."""
    node = _children(tree)
    if node is None:
        return [prefix]
    labels, children, _ = node
    return [
        path for label, child in zip(labels, children) for path in tree_paths(child, prefix + label)
    ]
