"""`fcgrad evaluate` and `fcgrad predict`: use a trained checkpoint on the valid set or on a
user's own 28x28 digit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from fcgrad.cli import options as opt
from fcgrad.cli import plots, render_model
from fcgrad.cli.app import emit, say_drawn, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.errors import ConfigError
from fcgrad.training.checkpoint import Checkpoint
from fcgrad.training.evaluation import evaluate_model, load_image, predict

CheckpointArg = Annotated[
    Path,
    typer.Argument(
        help="A checkpoint written by `fcgrad train --save`.",
        exists=True,
        metavar="CHECKPOINT",
    ),
]


@user_errors
def evaluate_cmd(
    checkpoint: CheckpointArg,
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    plot: opt.Plot = None,
    json_: opt.Json = False,
) -> None:
    """Score a trained model on the 10,000 valid images: loss, accuracy, each digit's
    accuracy and the confusion matrix."""
    ck = Checkpoint.load(checkpoint)
    if plot is not None:
        plots.pyplot()  # matplotlib is there: fail before the work
    data = prepared(source(data_dir, mirrors, no_default_mirrors, no_download), json_)
    ck.check_statistics(data.stats.mean, data.stats.std, checkpoint, data_dir)
    result = evaluate_model(ck, data.x_valid, data.y_valid, checkpoint.name)
    drawn = []
    if plot is not None:
        drawn = [
            str(p) for p in plots.evaluation(result, ck.params.layers[0].w, data.x_valid, plot)
        ]
    emit(result, json_, render_model.evaluation, plots=drawn)
    say_drawn(drawn, json_)


@user_errors
def predict_cmd(
    checkpoint: CheckpointArg,
    index: Annotated[
        list[int] | None,
        typer.Option(
            "--index", metavar="I", help="A valid-set image by its index, 0-9,999 (repeatable)."
        ),
    ] = None,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            "--image",
            metavar="FILE",
            help="Your own 28x28 grayscale digit as .png (needs the plot extra) or .npy "
            "(white on black, pixels in [0, 1] or [0, 255]) (repeatable).",
            exists=True,
        ),
    ] = None,
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    json_: opt.Json = False,
) -> None:
    """Draw digits in the terminal with the model's prediction: the true digit when known and
    the top three digits with their probabilities (default: valid image 0)."""
    ck = Checkpoint.load(checkpoint)
    indices, files = list(index or ([] if image else [0])), list(image or [])
    rows: list[np.ndarray] = []
    sources: list[str] = []
    labels: list[int | None] = []
    if indices:
        data = prepared(source(data_dir, mirrors, no_default_mirrors, no_download), json_)
        n = data.x_valid.shape[0]
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise ConfigError(
                f"index {bad[0]} is not a valid image: give 0 to {n - 1}", param="index"
            )
        raw = data.x_valid[indices] * data.stats.std + data.stats.mean  # the pixels again
        rows.append(raw.astype(np.float32))
        sources += [f"valid image {i}" for i in indices]
        labels += [int(data.y_valid[i]) for i in indices]
    if files:
        rows.append(np.stack([load_image(f) for f in files]))
        sources += [str(f) for f in files]
        labels += [None] * len(files)
    result = predict(ck, np.concatenate(rows), sources, labels, checkpoint.name)
    emit(result, json_, render_model.predictions)
