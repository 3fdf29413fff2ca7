"""The two losses: the lesson's MSE on the digit label, and cross-entropy over ten classes.

- `mse`: the net has one output; the target is the digit as a float (the lesson's
  regression). The (N, 1) prediction is squeezed to (N,) explicitly: any other
  shape raises `ShapeError` rather than broadcasting (N, 1) - (N,) to (N, N).
  The predicted digit is the output rounded and clipped to 0..9.
- `cross-entropy`: the net has ten outputs (logits); the target is the label;
  the loss is the mean negative log-softmax of the true class, in nats. Its
  gradient with respect to the logits is `(softmax - onehot) / N`. The predicted
  digit is the argmax.

Each loss is one row of `LOSSES` (plain numpy, no gradient: what evaluation and finite
differences use); each strategy keeps its own derivation in its own table.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

from fcgrad.engine import ops
from fcgrad.errors import ShapeError


class Loss(str, enum.Enum):
    """The loss a net is trained and checked with (`--loss`)."""

    mse = "mse"
    cross_entropy = "cross-entropy"

    @property
    def row(self) -> LossRow:
        """This loss's row of `LOSSES`."""
        return LOSSES[self]

    @property
    def n_out(self) -> int:
        """Width of the output layer this loss expects: 1 for mse, 10 for cross-entropy."""
        return self.row.n_out

    @property
    def default_lr(self) -> float:
        """SGD rate that trains the lesson's net stably: 0.1 for CE; 0.01 for mse (0.1 diverges)."""
        return self.row.default_lr


def check_mse_shapes(pred_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    """Raise ShapeError unless the prediction is (N, 1) and the target is (N,), N >= 1."""
    n = target_shape[0] if len(target_shape) == 1 else None
    if not n or pred_shape != (n, 1):
        raise ShapeError(
            f"mse: prediction {pred_shape} and target {target_shape} must be (N, 1) and (N,), "
            "N at least 1"
        )


def check_ce_shapes(logits_shape: tuple[int, ...], labels_shape: tuple[int, ...]) -> None:
    """Raise ShapeError unless the logits are (N, C) and the labels are (N,), N >= 1."""
    if len(logits_shape) != 2 or labels_shape != (logits_shape[0],) or not labels_shape[0]:
        raise ShapeError(
            f"cross-entropy: logits {logits_shape} and labels {labels_shape} "
            "must be (N, C) and (N,), N at least 1"
        )


def _mse(out: np.ndarray, y: np.ndarray) -> float:
    check_mse_shapes(out.shape, y.shape)
    return float(np.mean(np.square(ops.squeeze(out, -1) - y)))


def _cross_entropy(out: np.ndarray, y: np.ndarray) -> float:
    check_ce_shapes(out.shape, y.shape)
    return float(-np.mean(ops.log_softmax(out)[np.arange(y.shape[0]), y]))


@dataclasses.dataclass(frozen=True)
class LossRow:
    """A loss: the output width it needs (`n_out`; `fits` says which widths it accepts),
    SGD's default rate for it, the target of digit
    labels (N,) int as (labels, dtype) -> array, its value (out, target) -> float, and the
    predicted digits (N,) int64 of outputs (N, n_out)."""

    n_out: int
    fits: Callable[[int], bool]
    default_lr: float
    target: Callable[[np.ndarray, DTypeLike], np.ndarray]
    value: Callable[[np.ndarray, np.ndarray], float]
    predict: Callable[[np.ndarray], np.ndarray]


LOSSES: dict[Loss, LossRow] = {
    Loss.mse: LossRow(
        n_out=1,
        fits=lambda n: n == 1,
        default_lr=0.01,
        target=lambda labels, dtype: labels.astype(dtype),
        value=_mse,
        predict=lambda out: np.clip(np.rint(out[:, 0]), 0, 9).astype(np.int64),
    ),
    Loss.cross_entropy: LossRow(
        n_out=10,
        fits=lambda n: n >= 2,  # one logit would make the loss 0 whatever the weights
        default_lr=0.1,
        target=lambda labels, dtype: labels.astype(np.int64),
        value=_cross_entropy,
        predict=lambda out: np.argmax(out, axis=1),
    ),
}


def config_dict(config: object) -> dict[str, object]:
    """`dataclasses.asdict` of a run's configuration, with enums (Loss, Activation,
    Optimizer) as the option's value."""
    d = dataclasses.asdict(config)  # type: ignore[call-overload]
    return {k: v.value if isinstance(v, enum.Enum) else v for k, v in d.items()}


def targets(loss: Loss, labels: np.ndarray, dtype: DTypeLike = np.float32) -> np.ndarray:
    """The target array for `labels` (N,) int: the digit as `dtype` for mse, the labels for CE."""
    return loss.row.target(labels, dtype)


def value(loss: Loss, out: np.ndarray, y: np.ndarray) -> float:
    """The loss of outputs `out` against targets `y` (plain numpy, no gradient), in nats for CE."""
    return loss.row.value(out, y)


def accuracy(loss: Loss, out: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct digits: argmax of the logits (CE) or the rounded prediction (mse)."""
    return float(np.mean(loss.row.predict(out) == labels))
