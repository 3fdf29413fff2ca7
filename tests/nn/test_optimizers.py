"""The optimizers, against their update rules computed by hand in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fcgrad.errors import ConfigError
from fcgrad.nn import Linear, Loss, Params
from fcgrad.nn.optimizers import OPTIMIZERS, Hyper, Optimizer, default_lr, make


def _params(w: float, b: float) -> Params:
    return Params((Linear(np.full((2, 1), w), np.full(1, b)),))


def test_every_optimizer_has_a_row() -> None:
    assert set(OPTIMIZERS) == set(Optimizer)


def test_sgd_step_in_place() -> None:
    p, g = _params(1.0, 0.0), _params(2.0, 1.0)
    make(Optimizer.sgd, p, Hyper(0.5)).step(p, g)
    np.testing.assert_array_equal(p.layers[0].w, 0.0)
    np.testing.assert_array_equal(p.layers[0].b, -0.5)


def test_momentum_two_steps_by_hand() -> None:
    # v1 = g1 = 2; p1 = 1 - 0.1 * 2 = 0.8; v2 = 0.9 * 2 + 1 = 2.8; p2 = 0.8 - 0.1 * 2.8 = 0.52
    p = _params(1.0, 0.0)
    opt = make(Optimizer.momentum, p, Hyper(0.1, momentum=0.9))
    opt.step(p, _params(2.0, 0.0))
    opt.step(p, _params(1.0, 0.0))
    np.testing.assert_allclose(p.layers[0].w, 0.52, rtol=1e-15)


def test_adam_two_steps_by_hand() -> None:
    """Kingma and Ba 2015, Algorithm 1, written out: m_t, v_t, the bias-corrected mhat, vhat,
    p -= lr mhat / (sqrt(vhat) + eps)."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    p, want, m, v = _params(1.0, 0.0), 1.0, 0.0, 0.0
    opt = make(Optimizer.adam, p, Hyper(lr))
    for t, g in enumerate((2.0, -0.5), start=1):
        opt.step(p, _params(g, 0.0))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        want -= lr * mhat / (math.sqrt(vhat) + eps)
    # the paper's efficient form moves eps inside the correction: agreement to ~eps / |g|
    np.testing.assert_allclose(p.layers[0].w, want, rtol=1e-8)
    assert opt.state()["t"] == 2


def test_float32_stays_float32() -> None:
    p = Params((Linear(np.ones((3, 2), np.float32), np.zeros(2, np.float32)),))
    for kind in Optimizer:
        opt = make(kind, p, Hyper(0.01))
        opt.step(p, p.copy())
        assert all(a.dtype == np.float32 for a in p.arrays())
        assert all(a.dtype == np.float32 for a in opt.state().values() if isinstance(a, np.ndarray))


@pytest.mark.parametrize("kind", [Optimizer.momentum, Optimizer.adam])
def test_state_round_trips_bit_for_bit(kind: Optimizer) -> None:
    rng = np.random.default_rng(0)
    grads = [Params((Linear(rng.standard_normal((3, 2)), rng.standard_normal(2)),)) for _ in "abc"]
    p = Params((Linear(np.ones((3, 2)), np.zeros(2)),))
    a = make(kind, p, Hyper(0.05))
    a.step(p, grads[0])
    q = p.copy()
    b = make(kind, q, Hyper(0.05))
    b.load({k: np.copy(v) for k, v in a.state().items()})
    for g in grads[1:]:
        a.step(p, g)
        b.step(q, g)
    for x, y in zip(p.arrays(), q.arrays()):
        np.testing.assert_array_equal(x, y)


def test_default_rates() -> None:
    assert default_lr(Optimizer.sgd, Loss.cross_entropy) == 0.1
    assert default_lr(Optimizer.sgd, Loss.mse) == 0.01
    assert default_lr(Optimizer.momentum, Loss.cross_entropy, 0.9) == pytest.approx(0.01)
    assert default_lr(Optimizer.adam, Loss.mse) == 1e-3


@pytest.mark.parametrize(
    ("hyper", "param"),
    [(Hyper(0.0), "lr"), (Hyper(float("nan")), "lr"), (Hyper(0.1, 1.0), "momentum")],
)
def test_bad_settings_name_the_parameter(hyper: Hyper, param: str) -> None:
    with pytest.raises(ConfigError, match=f"^{param} must be") as e:
        make(Optimizer.momentum, _params(1.0, 0.0), hyper)
    assert e.value.param == param
