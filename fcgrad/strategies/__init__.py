"""Three independent ways to compute the loss and its gradients, sharing one op set.

Each strategy module exposes the same names (as early tinygrad's back ends did):

- `value(params, x, y, loss) -> float`: the strategy's own forward pass;
- `value_and_grads(params, x, y, loss, *, input_grad=False, workspace=None) -> LossAndGrads`
  (with a `Workspace`, large results may be written into reused buffers).

`x` is (N, n_in) float32 or float64; `y` is the target from `fcgrad.nn.losses.targets`.
Gradients have the dtype of the inputs: no strategy promotes float32 to float64.

- `manual`: `Tensor`s holding `value` and `grad`, filled by the hand-written
  `lin_grad`, `relu_grad`, `mse_grad`, `cross_entropy_grad` (the lesson's first version);
- `vwc` ("value with chain"): each op returns `(value, pullback)` and the model
  composes the pullbacks in reverse (the lesson's second version);
- `tape`: reverse-mode autodiff of the primitive ops (`fcgrad.engine.autodiff`), its tape
  recorded once per batch shape and replayed (`fcgrad.engine.replay`).
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from fcgrad.errors import ConfigError
from fcgrad.nn.model import Params


@dataclasses.dataclass
class LossAndGrads:
    """A loss (float; nats for cross-entropy) and its gradients.

    `params` holds d loss / d parameter with each parameter's shape and dtype;
    `input` is d loss / d x, shaped like x, or None when it was not asked for.
    """

    loss: float
    params: Params
    input: np.ndarray | None = None

    def named(self) -> dict[str, np.ndarray]:
        """The gradients under the lesson's names (w1, b1, ...), then `x` if present."""
        out = self.params.named()
        if self.input is not None:
            out["x"] = self.input
        return out


class Workspace:
    """Large buffers reused across calls, by (name, shape, dtype).

    A full-batch pass writes a (60000, 784) input gradient: into a fresh array that
    costs the page faults of 188 MB, about 5 ms of a 70 ms pass; into a reused buffer
    it does not. Pass the same workspace to repeated `value_and_grads` calls (a
    benchmark, a training loop); a result drawn from it is overwritten by the next call
    that uses it, so copy what you keep. All three strategies use it.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialized array of `shape` and `dtype`, the same one each time it is asked for."""
        key = (name, tuple(shape), np.dtype(dtype))
        if key not in self._buffers:
            self._buffers[key] = np.empty(shape, dtype)
        return self._buffers[key]


def input_buffer(workspace: Workspace | None, g: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """The workspace's buffer for g @ w.T (the input gradient), or None without a workspace."""
    if workspace is None:
        return None
    return workspace.buffer("input gradient", (g.shape[0], w.shape[0]), np.result_type(g, w))


NAMES = ("manual", "vwc", "tape")


def get(name: str) -> types.ModuleType:
    """The strategy module called `name`; ConfigError if there is none."""
    from fcgrad.strategies import manual, tape, vwc

    modules = {"manual": manual, "vwc": vwc, "tape": tape}
    if name not in modules:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(NAMES)}")
    return modules[name]
