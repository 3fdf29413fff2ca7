"""What one training step of the tape strategy runs: its replayed program, counted (never
timed). A step of the 784-50-10 cross-entropy net is 24 numpy calls, five of them the
matrix products; more would be work around the products that an epoch pays 938 times."""

from __future__ import annotations

import numpy as np

from fcgrad.nn.init import init_params
from fcgrad.nn.losses import targets
from fcgrad.strategies import tape
from fcgrad.training.config import TrainConfig


def _programs(loss: str) -> list[tuple[list[str], list[str]]]:
    """The programs the tape records for one step at batch 64 (on a fresh cache: other
    tests record other shapes of the same net)."""
    tape._VJPS.clear()
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((64, 784)).astype(np.float32), rng.integers(0, 10, 64)
    cfg = TrainConfig(loss=loss)  # type: ignore[arg-type]
    net = cfg.net(784)
    params = init_params(net, 0)
    tape.value_and_grads(net, params, x, targets(cfg.loss, labels, x.dtype))
    vjp = tape._VJPS[(net, False)]
    return [
        ([s.prim.name for s in p.forward_steps], [s.prim.name for s in p.backward_steps])
        for p in vjp.programs.values()
        if hasattr(p, "forward_steps")
    ]


def test_a_cross_entropy_step_is_24_numpy_calls_with_five_products() -> None:
    ((forward, backward),) = _programs("cross-entropy")
    assert forward == [
        "matmul", "add", "relu", "matmul", "add", "log_softmax", "mul", "sum",
    ]  # fmt: skip
    assert len(backward) == 16 and backward.count("matmul") == 3
    assert (forward + backward).count("matmul") == 5  # x@w1, h@w2, g@w2.T, h.T@g, x.T@g1


def test_an_mse_step_needs_no_more_calls_than_cross_entropys() -> None:
    ((forward, backward),) = _programs("mse")
    assert len(forward) + len(backward) <= 24
    assert (forward + backward).count("matmul") == 5
