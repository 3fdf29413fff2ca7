"""The function under test at float64: its leaves, their names, and f of the leaves.

`check_grads` copies every argument leaf to a float64 array once (`float64_problem`); the
lines that `fcgrad.checking.verdict` judges move those arrays in place, and `Problem.value`
evaluates f there. `gradient_at` gives the analytic gradient at other leaves (finding kinks,
the nearby point off them).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine.autodiff import vjp
from fcgrad.engine.pytree import tree_flatten, tree_paths
from fcgrad.errors import ConfigError, UserCodeError


class PrecisionWarning(UserWarning):
    """Inputs were promoted from float32 to float64 for the finite differences."""


@dataclasses.dataclass(frozen=True)
class Options:
    """check_grads' options: coordinates sampled per leaf (all when `full`), the relative
    step, rtol and atol (None: rtol times each leaf's largest central difference)."""

    samples: int
    full: bool
    step: float
    rtol: float
    atol: float | None


@dataclasses.dataclass
class Problem:
    """The function under test at float64, flattened: leaves, their names, and f of the leaves."""

    f: Callable[..., Any]
    given: list[Any]  # the caller's leaves, as given (dtype, kind)
    leaves: list[np.ndarray]  # float64 copies, perturbed in place
    names: list[str]
    rebuild_given: Callable[[list[Any]], Any]  # the caller's structure around new leaves

    f0: float = float("nan")  # f at the unperturbed point
    out_dtype: np.dtype | None = None  # the dtype f returned its value in

    flat: bool = False  # every argument an array leaf: the arguments are the leaves

    def rebuild(self, xs: list[Any]) -> Any:
        """The arguments (a tuple) around float64 leaves, each of the kind the caller gave."""
        if self.flat:  # the common case, made short (f is evaluated thousands of times)
            return tuple(xs)
        return self.rebuild_given([as_given(x, leaf) for x, leaf in zip(xs, self.given)])

    def value(self) -> float:
        """f at the current leaves, as a float; UserCodeError if f does not return a real scalar."""
        return self.number(self.f(*self.rebuild(self.leaves)))

    def number(self, out: Any) -> float:
        if isinstance(out, (bool, np.bool_)) or not isinstance(
            out, (float, int, np.ndarray, np.generic)
        ):
            raise UserCodeError(
                f"check_grads: f must return a real scalar, not {type(out).__name__}"
            )
        arr = np.asarray(out)
        if arr.shape != ():
            raise UserCodeError(f"check_grads: f must return a scalar, got shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise UserCodeError(f"check_grads: f must return a real scalar, not {arr.dtype}")
        if self.out_dtype is None:
            self.out_dtype = arr.dtype
        return float(arr)


def float64_problem(f: Callable[..., Any], args: tuple[Any, ...]) -> Problem:
    """Flatten `args` and copy every leaf to a float64 array (warning for narrower floats)."""
    leaves, rebuild = tree_flatten(args)
    names = [f"args{p}" for p in tree_paths(args)]
    promoted, out = [], []
    for name, leaf in zip(names, leaves):
        kind = (
            np.asarray(leaf).dtype
            if isinstance(leaf, (np.ndarray, np.generic, float, int))
            else None
        )
        if kind is None or isinstance(leaf, (bool, np.bool_)) or kind.kind not in "fiu":
            what = kind if kind is not None else type(leaf).__name__
            raise ConfigError(
                f"check_grads: {name} is {what}; it differentiates real float arrays and numbers"
            )
        if kind.kind == "f" and kind.itemsize < 8:
            promoted.append(f"{name} ({kind})")
        out.append(np.array(leaf, dtype=np.float64))  # a copy: perturbed in place
    if promoted:
        warnings.warn(
            f"check_grads: {', '.join(promoted)} promoted to float64: central differences "
            "in a narrower float are quantized (eps32 / h ~ 0.02)",
            PrecisionWarning,
            stacklevel=3,
        )

    def rebuild_given(xs: list[Any]) -> Any:
        try:
            return rebuild(xs)
        except Exception as e:  # e.g. a dataclass whose __init__ rejects the new leaves
            raise UserCodeError(
                f"check_grads: cannot rebuild the arguments: {type(e).__name__}: {e}"
            ) from None

    problem = Problem(f, leaves, out, names, rebuild_given)
    problem.flat = len(leaves) == len(args) and all(type(a) is np.ndarray for a in args)
    return problem


def as_given(x: np.ndarray, leaf: Any) -> Any:
    """A float64 leaf in the kind the caller gave: a float for a float, an array otherwise."""
    return float(x) if isinstance(leaf, (float, int)) and not isinstance(leaf, np.generic) else x


def copies(xs: list[Any]) -> list[Any]:
    return [np.array(x) if isinstance(x, np.ndarray) else x for x in xs]


def flat_grads(grads: Any) -> list[Any]:
    return tree_flatten(tuple(grads))[0]


def gradient_at(
    problem: Problem, grad: Callable[..., Any] | None
) -> Callable[[list[np.ndarray]], list[np.ndarray] | None]:
    """The analytic gradient (float64 leaves) at other float64 leaves, for finding kinks;
    None where it cannot be computed there."""

    def at(leaves: list[np.ndarray]) -> list[np.ndarray] | None:
        args = problem.rebuild(copies(leaves))
        try:
            if grad is None:
                value, pullback = vjp(problem.f, *args)
                flat = flat_grads(pullback(np.ones_like(np.asarray(value, dtype=np.float64))))
            else:
                g = grad(*args)
                flat = flat_grads(g if len(args) != 1 or isinstance(g, tuple) else (g,))
            return [np.asarray(g, dtype=np.float64) for g in flat]
        except Exception:  # the function or gradient fails there: nothing is found
            return None

    return at
