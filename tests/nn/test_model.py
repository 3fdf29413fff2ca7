"""Kaiming init, the plain forward pass and the SGD step."""

from __future__ import annotations

import numpy as np
import pytest

from fcgrad.errors import ConfigError
from fcgrad.nn import model


def test_kaiming_init_scales_and_zero_biases() -> None:
    p = model.init_params([784, 500, 1], 0)
    w1, w2 = p.layers[0].w, p.layers[1].w
    assert w1.shape == (784, 500) and w2.shape == (500, 1)
    assert w1.std() == pytest.approx(np.sqrt(2 / 784), rel=0.01)  # He et al. 2015, for ReLU
    assert w2.std() == pytest.approx(1 / np.sqrt(500), rel=0.1)  # the lesson's output layer
    assert all(not layer.b.any() for layer in p.layers)
    assert all(a.dtype == np.float32 for a in p.arrays())


def test_same_seed_same_weights() -> None:
    a, b = model.init_params([10, 5, 2], 7), model.init_params([10, 5, 2], 7)
    for x, y in zip(a.arrays(), b.arrays()):
        np.testing.assert_array_equal(x, y)
    c = model.init_params([10, 5, 2], 8)
    assert not np.array_equal(a.layers[0].w, c.layers[0].w)


def test_named_and_sizes() -> None:
    p = model.init_params([784, 128, 64, 10], 0)
    assert list(p.named()) == ["w1", "b1", "w2", "b2", "w3", "b3"]
    assert p.sizes == (784, 128, 64, 10)


def test_forward_hand_computed() -> None:
    p = model.Params(
        (
            model.Linear(np.array([[1.0, -1.0]]), np.array([0.0, 0.5])),
            model.Linear(np.array([[2.0], [3.0]]), np.array([1.0])),
        )
    )
    # x = 2: hidden = relu([2, -1.5]) = [2, 0]; out = 2*2 + 0*3 + 1 = 5
    np.testing.assert_array_equal(model.forward(p, np.array([[2.0]])), [[5.0]])


def test_sgd_step_in_place() -> None:
    p = model.Params((model.Linear(np.ones((2, 1)), np.zeros(1)),))
    g = model.Params((model.Linear(np.full((2, 1), 2.0), np.ones(1)),))
    model.sgd_step(p, g, 0.5)
    np.testing.assert_array_equal(p.layers[0].w, 0.0)
    np.testing.assert_array_equal(p.layers[0].b, -0.5)


@pytest.mark.parametrize("sizes", [[784], [784, 0, 1], []])
def test_bad_sizes(sizes: list[int]) -> None:
    with pytest.raises(ConfigError):
        model.init_params(sizes, 0)
