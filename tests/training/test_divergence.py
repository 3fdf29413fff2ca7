"""A run whose loss becomes NaN or inf stops with a message naming the step and the rate; a
resumed run that diverges at once also names the weights it resumed from."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from fcgrad.errors import TrainingDiverged
from fcgrad.nn.params import Linear, Params
from fcgrad.training.train import TrainConfig, TrainingInterrupted, train


def _data(synthetic: Any) -> tuple[Any, ...]:
    return tuple(a[:640] for a in synthetic)


def test_a_fresh_run_blames_the_learning_rate(synthetic: Any) -> None:
    with pytest.raises(TrainingDiverged) as e:
        train(*_data(synthetic), TrainConfig(epochs=1, lr=1e6))
    assert re.fullmatch(
        r"the training loss became (nan|inf) at epoch 1, step \d+ with learning rate "
        r"1e\+06 \(sgd\); try a smaller learning rate",
        str(e.value),
    )


def test_a_resumed_run_also_names_the_weights_it_resumed_from(synthetic: Any) -> None:
    """Weights 1e12 times larger pass the checkpoint's checks (finite, |w| at most 1e15), yet
    mse's square overflows float32 at once: the message names them beside the rate."""
    config = TrainConfig(epochs=2, loss="mse")  # type: ignore[arg-type]
    stops = iter([False, True])
    with pytest.raises(TrainingInterrupted) as stop:
        train(*_data(synthetic), config, should_stop=lambda: next(stops))
    saved = stop.value.checkpoint
    huge = Params(tuple(Linear(la.w * 1e12, la.b) for la in saved.params.layers))
    resume = dataclasses.replace(saved, params=huge)
    with pytest.raises(TrainingDiverged) as e:
        train(*_data(synthetic), config, resume=resume)
    message = str(e.value)
    assert message.startswith("the training loss became ")
    assert "try a smaller learning rate (the run resumed from weights as large as " in message
    largest = max(float(abs(la.w).max()) for la in huge.layers)
    assert message.endswith(f"as large as {largest:.3g}, which may be the cause)")
