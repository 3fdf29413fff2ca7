"""Pictures where a person would rather look than read, as PNG files drawn with matplotlib
(the optional `plot` extra: `pip install 'fcgrad[plot]'`).

- `training`: train.png, the loss (train and valid) and the valid accuracy per epoch;
- `evaluation`: confusion.png (the confusion matrix as a heatmap), weights.png (each
  hidden unit's first-layer weights as a 28x28 image), wrong.png (the most confidently
  wrong valid digits, with their labels).

Each file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fcgrad.errors import DataError, MissingExtra
from fcgrad.fileio import atomic_path
from fcgrad.training.evaluation import Evaluation
from fcgrad.training.train import TrainResult

DPI = 100
MAX_UNITS = 50  # first-layer units drawn in weights.png


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg back end (no display needed); MissingExtra
    when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra(
            "plotting needs matplotlib, which is not installed: pip install 'fcgrad[plot]'"
        ) from None
    return plt


def folder(path: Path) -> Path:
    """`path` as a folder for pictures, made if missing; DataError naming it otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot make the picture folder {path}: {e.strerror}") from None
    return path


def _save(fig: Any, path: Path) -> Path:
    plt = pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return path


def training(result: TrainResult, out: Path) -> list[Path]:
    """train.png: loss and accuracy per epoch (6.4 x 3.2 in at DPI: 640 x 320 pixels)."""
    plt = pyplot()
    epochs = [e.epoch for e in result.epochs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 3.2), layout="constrained")
    left.plot(epochs, [e.train_loss for e in result.epochs], "o-", label="train")
    left.plot(epochs, [e.valid_loss for e in result.epochs], "s-", label="valid")
    left.set(xlabel="epoch", ylabel="loss", title="Loss")
    left.legend()
    right.plot(epochs, [100 * e.valid_accuracy for e in result.epochs], "o-", color="C2")
    right.set(xlabel="epoch", ylabel="valid accuracy (%)", title="Accuracy")
    for ax in (left, right):
        ax.set_xticks(epochs)
    return [_save(fig, folder(out) / "train.png")]


def init_histograms(acts: dict[str, tuple[np.ndarray, np.ndarray]], out: Path) -> list[Path]:
    """init.png: histograms of the activations after lin and after relu for each init
    (`fcgrad.lesson.sections.init_activations`), their mean and std in the titles."""
    plt = pyplot()
    fig, axes = plt.subplots(len(acts), 2, figsize=(7.6, 2.4 * len(acts)), layout="constrained")
    for row, (init, stages) in zip(np.atleast_2d(axes), acts.items()):
        for ax, stage, a in zip(row, ("after lin", "after relu"), stages):
            relu = "relu" in stage  # its zeros (about half) drawn as a share, not a spike
            shown = a[a > 0] if relu else a.ravel()
            ax.hist(shown, bins=80, range=(-4, 6), color="C1" if relu else "C0")
            zeros = f", {np.mean(a == 0):.0%} zeros" if relu else ""
            title = f"{init} {stage}\nmean {a.mean():.2f}, std {a.std():.2f}{zeros}"
            ax.set_title(title, fontsize=9)
            ax.set_yticks([])
    return [_save(fig, folder(out) / "init.png")]


def evaluation(result: Evaluation, w1: np.ndarray, x_valid: np.ndarray, out: Path) -> list[Path]:
    """confusion.png, weights.png and wrong.png; `w1` is the first layer's weights (784, k),
    `x_valid` the valid images (N, 784) that `result` scored (any normalization)."""
    where = folder(out)
    return [
        _confusion(result, where / "confusion.png"),
        _weights(w1, where / "weights.png"),
        _wrong(result, x_valid, where / "wrong.png"),
    ]


def _confusion(result: Evaluation, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.4), layout="constrained")
    c = result.confusion
    shade = np.log1p(c)
    image = ax.imshow(shade, cmap="viridis")
    for (i, j), n in np.ndenumerate(c):
        if n:  # dark text on the bright cells, light on the dark
            color = "k" if shade[i, j] > 0.6 * shade.max() else "w"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=6, color=color)
    ax.set(xlabel="predicted", ylabel="true digit", xticks=range(10), yticks=range(10))
    ax.set_title(f"{result.model}: {result.accuracy:.2%} of {result.rows:,}")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return _save(fig, path)


def _weights(w1: np.ndarray, path: Path) -> Path:
    plt = pyplot()
    units = min(w1.shape[1], MAX_UNITS)
    cols = 10
    rows = -(-units // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), layout="constrained")
    for k, ax in enumerate(np.atleast_1d(axes).flat):
        ax.axis("off")
        if k < units:
            w = w1[:, k].reshape(28, 28)
            bound = float(np.abs(w).max()) or 1.0
            ax.imshow(w, cmap="RdBu", vmin=-bound, vmax=bound)
    fig.suptitle(f"First-layer weights of {units} hidden units (red < 0 < blue)")
    return _save(fig, path)


def _wrong(result: Evaluation, x_valid: np.ndarray, path: Path) -> Path:
    plt = pyplot()
    shown = result.wrong or [{"index": 0, "label": -1, "predicted": -1, "confidence": 0.0}]
    cols = 8
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.3), layout="constrained")
    for k, ax in enumerate(np.atleast_1d(axes).flat):
        ax.axis("off")
        if k < len(result.wrong):
            w = result.wrong[k]
            ax.imshow(x_valid[int(w["index"])].reshape(28, 28), cmap="gray")
            ax.set_title(f"{w['label']:.0f} as {w['predicted']:.0f}", fontsize=8)
    fig.suptitle("Most confidently wrong: true digit as predicted")
    return _save(fig, path)
