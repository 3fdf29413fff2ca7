"""An epoch's work around the products: each batch gathered with one `take` into a reused
buffer, and an epoch equal, bit for bit, to the plain loop it replaces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.nn import optimizers
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import targets
from fcgrad.training.train import EpochRunner, TrainConfig


def _runner(synthetic: Any, **config: Any) -> EpochRunner:
    x, labels = synthetic[0][:1000], synthetic[1][:1000]
    cfg = TrainConfig(**config)
    net = cfg.net(784)
    params = init_params(net, 0)
    opt = optimizers.make(cfg.optimizer, params, cfg.hyper)
    y = targets(cfg.loss, labels, x.dtype)
    return EpochRunner(
        cfg, strategies.get(cfg.strategy), net, params, opt, x, y, np.random.default_rng(7)
    )


def test_a_batch_is_the_rows_asked_for_in_a_buffer_reused_per_row_count(synthetic: Any) -> None:
    run = _runner(synthetic)
    idx = np.array([5, 0, 999, 5])
    xb, yb = run.batch(idx)
    np.testing.assert_array_equal(xb, run.x[idx])
    np.testing.assert_array_equal(yb, run.y[idx])
    assert (xb.dtype, yb.dtype) == (run.x.dtype, run.y.dtype)
    again = run.batch(np.array([1, 2, 3, 4]))
    assert again[0] is xb and again[1] is yb  # the same buffers, refilled
    np.testing.assert_array_equal(xb, run.x[1:5])
    short = run.batch(np.array([9, 8]))
    assert short[0] is not xb and short[0].shape == (2, 784)
    np.testing.assert_array_equal(short[0], run.x[[9, 8]])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_an_epoch_equals_the_plain_loop_bit_for_bit(synthetic: Any, optimizer: str) -> None:
    """1,000 rows at batch 64: fifteen full batches and a short one of 40 rows; the plain
    loop gathers by fancy indexing and updates array by array, from fresh gradients."""
    for loss in ("cross-entropy", "mse"):
        for s in strategies.NAMES:
            run = _runner(synthetic, strategy=s, loss=loss, optimizer=optimizer)
            ref = _runner(synthetic, strategy=s, loss=loss, optimizer=optimizer)
            run.epoch(1)
            order = ref.rng.permutation(ref.x.shape[0])
            for start in range(0, ref.x.shape[0], 64):
                idx = order[start : start + 64]
                g = ref.strategy.value_and_grads(ref.net, ref.params, ref.x[idx], ref.y[idx])
                ref.optimizer.step(ref.params, g.params)
            for a, b in zip(run.params.arrays(), ref.params.arrays()):
                np.testing.assert_array_equal(a, b, err_msg=f"{s} {loss}")


def test_a_runner_whose_params_were_packed_again_still_trains(synthetic: Any) -> None:
    """Two runners on one Params: the first one's pack is no longer the parameters, so it
    updates them array by array instead of a buffer nobody reads."""
    first = _runner(synthetic)
    second = EpochRunner(
        first.config,
        first.strategy,
        first.net,
        first.params,
        first.optimizer,
        first.x,
        first.y,
        np.random.default_rng(7),
    )
    assert second._packed is not None and second._packed.holds(first.params)
    before = first.params.copy()
    first.epoch(1)
    assert not np.array_equal(before.layers[0].w, first.params.layers[0].w)


def test_the_tape_refuses_labels_that_are_not_integers() -> None:
    from fcgrad.strategies import tape

    with pytest.raises(IndexError, match="labels must be integers, got bool"):
        tape.label_weights(np.array([True, False]), 10, np.float32)
