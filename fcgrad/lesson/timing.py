"""Timings in the lesson's `time(repeating:)` form: average, min and max milliseconds of a
forward+backward pass of each strategy (every gradient, the input's included). Shown,
never checked: a machine's speed is no verdict."""

from __future__ import annotations

import time

import numpy as np

from fcgrad import strategies
from fcgrad.lesson.report import Section
from fcgrad.lesson.sections import lesson_net
from fcgrad.nn import losses
from fcgrad.nn.losses import Loss
from fcgrad.nn.params import Params
from fcgrad.strategies import Workspace

TIMING_ROWS = 10_000
WARMUP = 1


def timings(x: np.ndarray, labels: np.ndarray, params: Params, repeat: int) -> Section:
    """Each strategy's `value_and_grads` on (x, labels), `WARMUP` untimed runs then `repeat`
    timed ones (a reused workspace each, as a training loop has)."""
    net = lesson_net()
    y = losses.targets(Loss.mse, labels)
    notes: list[str] = []
    data: dict[str, object] = {}
    for name in strategies.NAMES:
        s, ws = strategies.get(name), Workspace()
        runs = []
        for i in range(WARMUP + repeat):
            start = time.perf_counter()
            s.value_and_grads(net, params, x, y, input_grad=True, workspace=ws)
            if i >= WARMUP:
                runs.append((time.perf_counter() - start) * 1e3)
        avg, lo, hi = sum(runs) / len(runs), min(runs), max(runs)
        notes.append(f"{name}: average: {avg:.2f} ms,   min: {lo:.2f} ms,   max: {hi:.2f} ms")
        data[name] = {"average_ms": avg, "min_ms": lo, "max_ms": hi, "runs_ms": runs}
    return Section(
        "timings",
        f"Timings: forward+backward, {x.shape[0]:,} rows, {repeat} runs",
        notes=notes,
        data={"rows": int(x.shape[0]), "repeat": repeat, "warmup": WARMUP, "strategies": data},
    )
