"""The two losses: the lesson's MSE on the digit label, and cross-entropy over ten classes.

- `mse`: the net has one output; the target is the digit as a float (the lesson's
  regression). The (N, 1) prediction is squeezed to (N,) explicitly: any other
  shape raises `ShapeError` rather than broadcasting (N, 1) - (N,) to (N, N).
- `cross-entropy`: the net has ten outputs (logits); the target is the label;
  the loss is the mean negative log-softmax of the true class, in nats. Its
  gradient with respect to the logits is `(softmax - onehot) / N`.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
from numpy.typing import DTypeLike

from fcgrad.engine import ops
from fcgrad.errors import ShapeError


class Loss(str, enum.Enum):
    """The loss a net is trained and checked with."""

    mse = "mse"
    cross_entropy = "cross-entropy"

    @property
    def n_out(self) -> int:
        """Width of the output layer this loss expects: 1 for mse, 10 for cross-entropy."""
        return 1 if self is Loss.mse else 10

    @property
    def default_lr(self) -> float:
        """SGD rate that trains the lesson's net stably: 0.1 for CE; 0.01 for mse (0.1 diverges)."""
        return 0.01 if self is Loss.mse else 0.1


def config_dict(config: object) -> dict[str, object]:
    """`dataclasses.asdict` of a run's configuration, with its Loss as the option's value."""
    d = dataclasses.asdict(config)  # type: ignore[call-overload]
    return {k: v.value if isinstance(v, Loss) else v for k, v in d.items()}


def targets(loss: Loss, labels: np.ndarray, dtype: DTypeLike = np.float32) -> np.ndarray:
    """The target array for `labels` (N,) int: the digit as `dtype` for mse, the labels for CE."""
    return labels.astype(dtype) if loss is Loss.mse else labels.astype(np.int64)


def check_mse_shapes(pred_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    """Raise ShapeError unless the prediction is (N, 1) and the target is (N,)."""
    n = target_shape[0] if len(target_shape) == 1 else None
    if n is None or pred_shape != (n, 1):
        raise ShapeError(
            f"mse: prediction {pred_shape} and target {target_shape} must be (N, 1) and (N,)"
        )


def check_ce_shapes(logits_shape: tuple[int, ...], labels_shape: tuple[int, ...]) -> None:
    """Raise ShapeError unless the logits are (N, C) and the labels are (N,)."""
    if len(logits_shape) != 2 or labels_shape != (logits_shape[0],):
        raise ShapeError(
            f"cross-entropy: logits {logits_shape} and labels {labels_shape} "
            "must be (N, C) and (N,)"
        )


def onehot(labels: np.ndarray, n_classes: int, dtype: DTypeLike) -> np.ndarray:
    """(N, n_classes) array of `dtype` with a 1 at each row's label."""
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def value(loss: Loss, out: np.ndarray, y: np.ndarray) -> float:
    """The loss of outputs `out` against targets `y` (plain numpy, no gradient), in nats for CE."""
    if loss is Loss.mse:
        check_mse_shapes(out.shape, y.shape)
        return float(np.mean(np.square(ops.squeeze(out, -1) - y)))
    check_ce_shapes(out.shape, y.shape)
    return float(-np.mean(ops.log_softmax(out)[np.arange(y.shape[0]), y]))


def accuracy(loss: Loss, out: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct digits: argmax of the logits (CE) or the rounded prediction (mse)."""
    if loss is Loss.mse:
        pred = np.clip(np.rint(out[:, 0]), 0, 9).astype(np.int64)
    else:
        pred = np.argmax(out, axis=1)
    return float(np.mean(pred == labels))
