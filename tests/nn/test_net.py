"""The net description, init per activation, and the plain forward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fcgrad.errors import ConfigError, ShapeError
from fcgrad.nn import Act, Activation, Dense, Linear, Loss, Net, Params, forward, init_params
from fcgrad.nn.activations import ACTIVATIONS
from fcgrad.nn.init import layer_stds
from fcgrad.nn.losses import LOSSES
from fcgrad.nn.net import KINDS


def test_the_lessons_net_is_dense_relu_dense_then_mse() -> None:
    net = Net.mlp((784, 50, 1), Loss.mse)
    assert net.layers == (Dense(784, 50), Act(Activation.relu), Dense(50, 1))
    assert net.sizes == (784, 50, 1) and net.describe() == "784-50-1 relu, mse"
    assert [la.kind for la in net.layers] == ["dense", "relu", "dense"]
    assert hash(net) == hash(Net.mlp([784, 50, 1], "mse"))  # hashable: a key of the tape's cache
    assert KINDS == ("dense", "relu", "tanh", "sigmoid", "leaky-relu")


def test_every_kind_has_a_description_row() -> None:
    assert set(ACTIVATIONS) == set(Activation)
    assert set(LOSSES) == set(Loss)


@pytest.mark.parametrize("sizes", [[784], [784, 0, 1], []])
def test_bad_sizes_name_the_hidden_parameter(sizes: list[int]) -> None:
    with pytest.raises(ConfigError, match=r"^hidden sizes") as e:
        init_params(sizes, 0)
    assert e.value.param == "hidden"


def test_negative_seed_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"^seed must be 0 or more") as e:
        init_params([3, 2, 1], -1)
    assert e.value.param == "seed"


def test_params_that_do_not_fit_the_description_are_a_shape_error() -> None:
    net = Net.mlp((4, 3, 1), Loss.mse)
    with pytest.raises(ShapeError, match=r"layer 2 is dense 3->1, but w2 is \(3, 2\)"):
        net.check(init_params([4, 3, 2], 0))
    with pytest.raises(ShapeError, match="2 dense layers but the parameters 3"):
        list(net.walk(init_params([4, 3, 3, 1], 0)))


def test_kaiming_init_scales_and_zero_biases() -> None:
    p = init_params([784, 500, 1], 0)
    w1, w2 = p.layers[0].w, p.layers[1].w
    assert w1.shape == (784, 500) and w2.shape == (500, 1)
    assert w1.std() == pytest.approx(np.sqrt(2 / 784), rel=0.01)  # He et al. 2015, for ReLU
    assert w2.std() == pytest.approx(1 / np.sqrt(500), rel=0.1)  # the lesson's output layer
    assert all(not layer.b.any() for layer in p.layers)
    assert all(a.dtype == np.float32 for a in p.arrays())


def test_relu_init_is_the_same_draw_as_before_the_description() -> None:
    """The weights of seed 0 are randn * sqrt(2 / fan_in), then randn / sqrt(fan_in), drawn
    in that order from one PCG64 Generator: old checkpoints and figures stay comparable."""
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((784, 50)) * np.sqrt(2.0 / 784)).astype(np.float32)
    w2 = (rng.standard_normal((50, 10)) * (1.0 / np.sqrt(50))).astype(np.float32)
    p = init_params(Net.mlp((784, 50, 10), Loss.cross_entropy), 0)
    np.testing.assert_array_equal(p.layers[0].w, w1)
    np.testing.assert_array_equal(p.layers[1].w, w2)


@pytest.mark.parametrize(
    ("activation", "std_of_784_to_50"),
    [
        (Activation.relu, math.sqrt(2 / 784)),  # He et al. 2015, eq. 10
        (Activation.leaky_relu, math.sqrt(2 / (1 + 0.01**2) / 784)),  # eq. 15, a = 0.01
        (Activation.tanh, math.sqrt(2 / (784 + 50))),  # Glorot and Bengio 2010, eq. 12
        (Activation.sigmoid, math.sqrt(2 / (784 + 50))),
    ],
)
def test_init_follows_the_activation(activation: Activation, std_of_784_to_50: float) -> None:
    net = Net.mlp((784, 50, 10), Loss.cross_entropy, activation)
    assert layer_stds(net) == pytest.approx([std_of_784_to_50, 1 / math.sqrt(50)], rel=1e-12)
    w = init_params(net, 3).layers[0].w
    assert w.std() == pytest.approx(std_of_784_to_50, rel=0.02)


def test_same_seed_same_weights() -> None:
    a, b = init_params([10, 5, 2], 7), init_params([10, 5, 2], 7)
    for x, y in zip(a.arrays(), b.arrays()):
        np.testing.assert_array_equal(x, y)
    c = init_params([10, 5, 2], 8)
    assert not np.array_equal(a.layers[0].w, c.layers[0].w)


def test_named_and_sizes() -> None:
    p = init_params([784, 128, 64, 10], 0)
    assert list(p.named()) == ["w1", "b1", "w2", "b2", "w3", "b3"]
    assert p.sizes == (784, 128, 64, 10)


def _hand_params() -> Params:
    return Params(
        (
            Linear(np.array([[1.0, -1.0]]), np.array([0.0, 0.5])),
            Linear(np.array([[2.0], [3.0]]), np.array([1.0])),
        )
    )


@pytest.mark.parametrize(
    ("activation", "hidden"),
    [
        (Activation.relu, [2.0, 0.0]),  # x = 2: pre-activations [2, -1.5]
        (Activation.leaky_relu, [2.0, -0.015]),
        (Activation.tanh, [math.tanh(2.0), math.tanh(-1.5)]),
        (Activation.sigmoid, [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.5))]),
    ],
)
def test_forward_hand_computed(activation: Activation, hidden: list[float]) -> None:
    net = Net.mlp((1, 2, 1), Loss.mse, activation)
    out = forward(net, _hand_params(), np.array([[2.0]]))
    np.testing.assert_allclose(out, [[2 * hidden[0] + 3 * hidden[1] + 1]], rtol=1e-14)
