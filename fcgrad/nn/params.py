"""The lesson's fully connected net: parameters, kaiming init, and a plain forward pass.

The architecture is `n_in -> hidden... -> n_out` with ReLU between layers and no
activation on the output. A layer computes `x @ w + b` with `w` of shape
(fan_in, fan_out) and `b` of shape (fan_out,), as in the lesson.

Initialization (He et al., "Delving Deep into Rectifiers", 2015, and the lesson):
a layer followed by a ReLU gets `randn * sqrt(2 / fan_in)` (kaiming init); the
output layer gets `randn / sqrt(fan_in)`; biases are zero. All float32.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from fcgrad.engine import ops
from fcgrad.errors import ConfigError


@dataclasses.dataclass(eq=False)
class Linear:
    """One layer's parameters: `w` (fan_in, fan_out) and `b` (fan_out,), float32."""

    w: np.ndarray
    b: np.ndarray


@dataclasses.dataclass(eq=False)
class Params:
    """The net's layers, input side first. A pytree: gradients come back as `Params`."""

    layers: tuple[Linear, ...]

    def named(self) -> dict[str, np.ndarray]:
        """The arrays under the lesson's names: w1, b1, w2, b2, ... (in layer order)."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers, start=1):
            out[f"w{i}"], out[f"b{i}"] = layer.w, layer.b
        return out

    def arrays(self) -> Iterator[np.ndarray]:
        """Every parameter array, in `named()` order."""
        for layer in self.layers:
            yield layer.w
            yield layer.b

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths, input first: (784, 50, 1) for the lesson's net."""
        return (self.layers[0].w.shape[0], *(layer.w.shape[1] for layer in self.layers))

    def astype(self, dtype: np.dtype | type) -> Params:
        """A copy with every array cast to `dtype` (float64 for finite differences)."""
        return Params(tuple(Linear(la.w.astype(dtype), la.b.astype(dtype)) for la in self.layers))

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> Params:
        """The inverse of `arrays()`: w1, b1, w2, b2, ... back into layers."""
        return cls(tuple(Linear(w, b) for w, b in zip(arrays[::2], arrays[1::2])))

    def copy(self) -> Params:
        """A deep copy."""
        return self.astype(self.layers[0].w.dtype)


def init_params(
    sizes: Sequence[int], seed: int | np.random.Generator = 0, dtype: type = np.float32
) -> Params:
    """Kaiming-initialized parameters for layer widths `sizes` (input first).

    `seed` seeds a `numpy.random.Generator` (PCG64); the same seed gives the same
    weights. Raises ConfigError for a negative seed, fewer than two sizes or a size
    below 1.
    """
    if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
        raise ConfigError(f"layer sizes must be at least two positive integers, got {list(sizes)}")
    if not isinstance(seed, np.random.Generator) and seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layers = []
    last = len(sizes) - 2
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        scale = np.sqrt(2.0 / fan_in) if i < last else 1.0 / np.sqrt(fan_in)
        w = (rng.standard_normal((fan_in, fan_out)) * scale).astype(dtype)
        layers.append(Linear(w, np.zeros(fan_out, dtype=dtype)))
    return Params(tuple(layers))


def forward(params: Params, x: np.ndarray) -> np.ndarray:
    """The net's output for inputs `x` (N, n_in): an (N, n_out) array, dtype of `x`."""
    h = x
    last = len(params.layers) - 1
    for i, layer in enumerate(params.layers):
        h = ops.add(ops.matmul(h, layer.w), layer.b)
        if i < last:
            h = ops.relu(h)
    return h


def sgd_step(params: Params, grads: Params, lr: float) -> None:
    """In place: p -= lr * g for every parameter array (plain SGD)."""
    for p, g in zip(params.arrays(), grads.arrays()):
        p -= lr * g
