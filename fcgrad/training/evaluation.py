"""Using a trained model: its scores on the valid set, and its predictions for images.

Pure: each function takes a `Checkpoint` and arrays, and returns a result object that the
CLI renders or prints as JSON. `evaluate_model` takes a set normalized as the checkpoint's
training data was (check that with `Checkpoint.check_statistics`); `predict` takes raw
pixels in [0, 1], (N, 784) float32 as `load_mnist` gives them, and normalizes them with
the checkpoint's own statistics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fcgrad.engine import ops
from fcgrad.errors import DataError, MissingExtra, ShapeError
from fcgrad.fileio import READ_ERRORS, load_error_reason, npy_header, open_regular
from fcgrad.nn import losses, memory
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import forward
from fcgrad.training.checkpoint import Checkpoint

DIGITS = 10
WRONG_SHOWN = 16


def outputs(checkpoint: Checkpoint, x: np.ndarray) -> np.ndarray:
    """The net's outputs (N, n_out) for normalized inputs x (N, 784) float32, computed in
    chunks of `memory.eval_chunk_rows(net)` rows, as training evaluates: a wide net's
    activations hold one chunk (at most `memory.EVAL_BUDGET_BYTES`), not N rows (a
    784-100000-10 model took 8.4 GB in 10,000-row chunks). ShapeError unless x is
    (N, 784)."""
    n_in = checkpoint.params.sizes[0]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ShapeError(f"images must be (N, {n_in}) pixels, got {x.shape}")
    net = checkpoint.config.net(n_in)
    rows = memory.eval_chunk_rows(net)
    chunks = [forward(net, checkpoint.params, x[i : i + rows]) for i in range(0, len(x), rows)]
    return np.concatenate(chunks) if chunks else np.zeros((0, net.sizes[-1]), np.float32)


@dataclasses.dataclass
class Evaluation:
    """A model's scores on a labelled set: the loss (nats for cross-entropy), the accuracy,
    each digit's accuracy (recall), the confusion matrix, rows the true digit and columns
    the predicted one (int64 counts, (10, 10)), and the most confidently wrong images
    (`wrong`: index, label, predicted, confidence; at most WRONG_SHOWN, most confident
    first; confidence is the softmax probability of the wrong digit, or for mse the
    output's distance from the true digit)."""

    model: str
    net: str
    rows: int
    loss: float
    accuracy: float
    per_class: list[float]
    confusion: np.ndarray
    wrong: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["confusion"] = self.confusion.tolist()
        return d


def evaluate_model(
    checkpoint: Checkpoint, images: np.ndarray, labels: np.ndarray, name: str | Path = ""
) -> Evaluation:
    """Score `checkpoint` on normalized images (N, 784) float32 with their digits `labels`
    (N,) int64; `name` names the model in the result."""
    if labels.shape != (images.shape[0],) or not images.shape[0]:
        raise ShapeError(f"{images.shape[0]} images need as many labels, got {labels.shape}")
    loss = checkpoint.config.loss
    out = outputs(checkpoint, images)
    predicted = loss.row.predict(out)
    confusion = np.zeros((DIGITS, DIGITS), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    wrong = _most_confidently_wrong(loss, out, predicted, labels)
    return Evaluation(
        str(name),
        checkpoint.config.net(images.shape[1]).describe(),
        int(images.shape[0]),
        losses.value(loss, out, losses.targets(loss, labels, out.dtype)),
        float(np.mean(predicted == labels)),
        [float(a) for a in per_class],
        confusion,
        wrong,
    )


def _most_confidently_wrong(
    loss: Loss, out: np.ndarray, predicted: np.ndarray, labels: np.ndarray
) -> list[dict[str, float]]:
    if loss is Loss.cross_entropy:
        logp = ops.log_softmax(out.astype(np.float64))
        confidence = np.exp(logp[np.arange(len(out)), predicted])
    else:
        confidence = np.abs(out[:, 0].astype(np.float64) - labels)
    bad = np.flatnonzero(predicted != labels)
    worst = bad[np.argsort(-confidence[bad], kind="stable")][:WRONG_SHOWN]
    return [
        {
            "index": int(i),
            "label": int(labels[i]),
            "predicted": int(predicted[i]),
            "confidence": float(confidence[i]),
        }
        for i in worst
    ]


@dataclasses.dataclass
class Prediction:
    """One image's prediction: where it came from, the true digit when known, the predicted
    digit, and (cross-entropy) the top three digits with their softmax probabilities or
    (mse) the net's raw output; `image` is its 28x28 pixels in [0, 1]."""

    source: str
    label: int | None
    digit: int
    top: list[tuple[int, float]]
    output: float | None
    image: np.ndarray

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "label": self.label,
            "digit": self.digit,
            "top": [{"digit": d, "probability": p} for d, p in self.top],
            "output": self.output,
        }


@dataclasses.dataclass
class Predictions:
    """Every prediction of one run of `predict`, and the model's name."""

    model: str
    predictions: list[Prediction]

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "predictions": [p.to_dict() for p in self.predictions]}


def predict(
    checkpoint: Checkpoint,
    images: np.ndarray,
    sources: list[str],
    labels: list[int | None],
    name: str | Path = "",
) -> Predictions:
    """Predictions for raw images (N, 784) in [0, 1]; `sources` names each, `labels` gives
    its true digit or None. DataError when the checkpoint records no training statistics
    to normalize the pixels with."""
    if not checkpoint.knows_statistics:
        raise DataError(
            f"{name or 'the checkpoint'} records no training statistics (a run of the Python "
            "API given none), which predict needs to normalize raw pixels"
        )
    x = ((images - checkpoint.mean) / checkpoint.std).astype(np.float32)
    out = outputs(checkpoint, x)
    digits = checkpoint.config.loss.row.predict(out)
    found = []
    for i, (source, label) in enumerate(zip(sources, labels)):
        if checkpoint.config.loss is Loss.cross_entropy:
            p = np.exp(ops.log_softmax(out[i].astype(np.float64)))
            best = np.argsort(-p, kind="stable")[:3]
            top, raw = [(int(d), float(p[d])) for d in best], None
        else:
            top, raw = [], float(out[i, 0])
        image = images[i].reshape(28, 28)
        found.append(Prediction(source, label, int(digits[i]), top, raw, image))
    return Predictions(str(name), found)


def load_image(path: Path) -> np.ndarray:
    """A user's 28x28 grayscale digit as (784,) float32 in [0, 1], white on black as MNIST:
    from an .npy file of shape (28, 28) or (784,) with values in [0, 1] or [0, 255], or a
    28x28 PNG (read with matplotlib, the plot extra; colour is averaged to gray, and a
    picture that is mostly light, a dark digit on white paper, is inverted). DataError naming
    the file for anything else; MissingExtra for a PNG without matplotlib."""
    try:
        with open_regular(path) as f:
            if path.suffix.lower() == ".png":
                return _png_digit(path, f)
            a = _npy_image(path, f)
    except OSError as e:
        raise DataError(f"{path}: {load_error_reason(e)}") from None
    pixels: np.ndarray = a.astype(np.float32).reshape(784)
    if not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path} must hold pixels in [0, 1] or [0, 255]")
    return pixels / np.float32(255) if pixels.max() > 1 else pixels


def _npy_image(path: Path, f: BinaryIO) -> np.ndarray:
    """The .npy array `f` holds, read once its header shows a 28x28 or 784 numeric array:
    a header claiming 75 GB costs nothing before it is refused."""
    if f.read(4) == b"PK\x03\x04":
        raise DataError(f"{path} is an .npz archive; give one image as .npy or .png")
    f.seek(0)
    try:
        shape, dtype = npy_header(f)
    except READ_ERRORS:
        raise DataError(f"{path}: not a .npy or .png file of an image") from None
    if shape not in ((28, 28), (784,)) or dtype.kind not in "uif":  # (no complex, no bool)
        raise DataError(f"{path} must hold a 28x28 grayscale image, got {shape} {dtype}")
    f.seek(0)
    try:
        a: np.ndarray = np.lib.format.read_array(f, allow_pickle=False)
    except READ_ERRORS as e:
        raise DataError(f"{path}: {load_error_reason(e)}") from None
    return a


def _png_digit(path: Path, f: BinaryIO) -> np.ndarray:
    try:
        import matplotlib.image
    except ImportError:
        raise MissingExtra("reading a PNG needs matplotlib: pip install 'fcgrad[plot]'") from None
    size = _png_size(f)  # from its header: a 30000 x 30000 PNG took 5.3 GB to refuse
    if size is not None and size != (28, 28):
        raise DataError(f"{path} must be a 28x28 picture, got {size[0]}x{size[1]}")
    f.seek(0)
    try:
        a = np.asarray(matplotlib.image.imread(f, format="png"), dtype=np.float32)
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path} is not a readable PNG: {e}") from None
    gray = a[..., :3].mean(axis=-1) if a.ndim == 3 else a
    if gray.shape != (28, 28):
        raise DataError(f"{path} must be a 28x28 picture, got {gray.shape[1]}x{gray.shape[0]}")
    pixels: np.ndarray = (1.0 - gray if gray.mean() > 0.5 else gray).reshape(784)
    return pixels.astype(np.float32)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(f: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk (the PNG specification, section 11.2.2:
    it comes first, right after the 8-byte signature), or None when the file does not
    start as a PNG does (then the decoder says what it is)."""
    head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
