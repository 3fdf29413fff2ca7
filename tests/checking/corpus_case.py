"""The corpus's Case: a function, its seeded arguments, its right and wrong gradients."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

Grad = Callable[..., tuple[np.ndarray, ...]]


@dataclasses.dataclass
class Case:
    name: str
    f: Callable[..., Any]
    args: tuple[np.ndarray, ...]
    grad: Grad
    wrong: dict[str, Grad] = dataclasses.field(default_factory=dict)
    valid: dict[str, Grad] = dataclasses.field(default_factory=dict)  # other conventions
    stale: bool = True  # False: the gradient at a nearby point is another valid convention


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
