"""A net's parameters: one `Linear` (w, b) per dense layer, input side first.

A dense layer computes `x @ w + b` with `w` of shape (fan_in, fan_out) and `b` of
shape (fan_out,), as in the lesson. `Params` is a pytree, so gradients come back as
`Params` too. The layers between them (activations) and the loss are described by
`fcgrad.nn.net.Net`; init is `fcgrad.nn.init.init_params`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np


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


@dataclasses.dataclass(eq=False)
class Packed:
    """`params` whose arrays are views of one contiguous 1-D `buffer`, in `arrays()` order.

    An elementwise update of every parameter (SGD's p -= lr g, momentum's, Adam's) is then
    one numpy call per operation on the buffers instead of one per array: 2 calls a step
    for SGD on the 784-50-10 net instead of 8. It changes no result (each element sees the
    same operations).
    """

    params: Params
    buffer: np.ndarray

    @staticmethod
    def can_pack(params: Params) -> bool:
        """Whether `params`' arrays all have one dtype (a buffer has one)."""
        dtypes = {a.dtype for a in params.arrays()}
        return len(dtypes) == 1

    @classmethod
    def empty_like(cls, params: Params) -> Packed:
        """Uninitialized arrays shaped like `params`, in one buffer of their dtype; ValueError
        when they have several (`can_pack`)."""
        if not cls.can_pack(params):
            raise ValueError("parameters of several dtypes cannot share one buffer")
        arrays = list(params.arrays())
        buffer = np.empty(sum(a.size for a in arrays), arrays[0].dtype)
        views, start = [], 0
        for a in arrays:
            views.append(buffer[start : start + a.size].reshape(a.shape))
            start += a.size
        return cls(Params.from_arrays(views), buffer)

    @classmethod
    def zeros_like(cls, params: Params) -> Packed:
        packed = cls.empty_like(params)
        packed.buffer[...] = 0
        return packed

    @classmethod
    def adopt(cls, params: Params) -> Packed:
        """Move `params`' values into one buffer, in place: `params.layers` is rebound to
        views of it. Every holder of `params` sees the same values, now packed; an array
        taken out of it before keeps its old values. ValueError as for `empty_like`."""
        packed = cls.empty_like(params)
        for dst, src in zip(packed.params.arrays(), params.arrays()):
            dst[...] = src
        params.layers = tuple(Linear(la.w, la.b) for la in packed.params.layers)
        return packed  # (its own layers: `holds(params)` sees a later rebinding)

    def holds(self, params: Params) -> bool:
        """Whether `params`' arrays are this pack's views themselves."""
        return len(params.layers) == len(self.params.layers) and all(
            a is b for a, b in zip(params.arrays(), self.params.arrays())
        )
