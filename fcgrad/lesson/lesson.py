"""`run_lesson`: every section of the lesson, in reading order."""

from __future__ import annotations

import numpy as np

from fcgrad.data.normalize import NormalizeReport
from fcgrad.errors import ConfigError
from fcgrad.lesson import sections, timing, trace
from fcgrad.lesson.report import Lesson


def run_lesson(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    report: NormalizeReport,
    *,
    seed: int = 0,
    repeat: int = 5,
    timing_rows: int = timing.TIMING_ROWS,
) -> Lesson:
    """The lesson on normalized data (as `fcgrad.data.prepare.prepare_mnist` gives it, with
    its normalization `report`): the init draws from `seed`, the gradients on every training
    row, the timings `repeat` times on the first `timing_rows` rows. ConfigError (param
    `repeat`, `seed` or `timing_rows`) for a count below 1 or a negative seed."""
    if repeat < 1:
        raise ConfigError(f"repeat must be 1 or more, got {repeat}", param="repeat")
    if seed < 0:
        raise ConfigError(f"seed must be 0 or more, got {seed}", param="seed")
    if timing_rows < 1:
        raise ConfigError(f"timing_rows must be 1 or more, got {timing_rows}", param="timing_rows")
    params = sections.lesson_params(seed)
    rows = min(timing_rows, x_train.shape[0])
    return Lesson(
        [
            sections.normalization(report),
            sections.sizes(x_train, y_train, x_valid),
            sections.init_stats(x_valid, seed),
            sections.initial_mse(x_valid, y_valid, params),
            sections.gradients(x_train, y_train, params),
            trace.call_trace(),
            trace.scalars(),
            timing.timings(x_train[:rows], y_train[:rows], params, repeat),
        ],
        seed,
        repeat,
    )
