"""Packed parameters: arrays that are views of one buffer, so that an optimizer updates all
of them with one call per operation; the same result, bit for bit, as array by array."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import targets
from fcgrad.nn.optimizers import OPTIMIZERS, Hyper, Optimizer
from fcgrad.nn.params import Packed
from fcgrad.strategies import Workspace
from fcgrad.training.config import TrainConfig


def _params() -> Any:
    return init_params(TrainConfig(hidden=(7, 5)).net(12), 3)


def test_adopt_moves_the_values_into_one_buffer_in_arrays_order() -> None:
    params = _params()
    before = [a.copy() for a in params.arrays()]
    packed = Packed.adopt(params)
    assert packed.holds(params)
    assert packed.buffer.ndim == 1 and packed.buffer.size == sum(a.size for a in before)
    np.testing.assert_array_equal(packed.buffer, np.concatenate([a.ravel() for a in before]))
    for a, b in zip(params.arrays(), before):
        assert a.base is packed.buffer and a.shape == b.shape and a.dtype == b.dtype
    params.layers[1].w[0, 0] = 42.0  # a view: the buffer sees it
    assert 42.0 in packed.buffer


def test_a_second_adopt_or_a_new_array_is_no_longer_held() -> None:
    params = _params()
    first = Packed.adopt(params)
    second = Packed.adopt(params)  # (two runners on one Params)
    assert second.holds(params) and not first.holds(params)
    params.layers[0].w = params.layers[0].w.copy()
    assert not second.holds(params)


def test_several_dtypes_are_not_packed() -> None:
    params = _params()
    params.layers[0].b = params.layers[0].b.astype(np.float64)
    assert not Packed.can_pack(params)
    with pytest.raises(ValueError, match="several dtypes"):
        Packed.adopt(params)
    momentum = OPTIMIZERS[Optimizer.momentum](params, Hyper(lr=0.1))
    assert momentum.state()["velocity.b1"].dtype == np.float64  # array by array


def test_holds_only_its_own_views() -> None:
    params = _params()
    packed = Packed.zeros_like(params)
    assert not packed.buffer.any() and not packed.holds(params)
    assert not packed.holds(packed.params.copy())
    assert packed.holds(packed.params)


@pytest.mark.parametrize("kind", list(Optimizer))
def test_a_packed_step_is_the_per_array_step_bit_for_bit(kind: Optimizer) -> None:
    rng = np.random.default_rng(11)
    plain, packed_params = _params(), _params()
    packed = Packed.adopt(packed_params)
    hyper = Hyper(lr=0.05, momentum=0.9)
    one, two = OPTIMIZERS[kind](plain, hyper), OPTIMIZERS[kind](packed_params, hyper)
    grads_pack = Packed.empty_like(plain)
    for _ in range(4):
        for g in grads_pack.params.arrays():
            g[...] = rng.standard_normal(g.shape)
        grads = grads_pack.params.copy()
        one.step(plain, grads)
        two.step_packed(packed.buffer, grads_pack.buffer)
    for a, b in zip(plain.arrays(), packed_params.arrays()):
        np.testing.assert_array_equal(a, b)
    state_one, state_two = one.state(), two.state()
    assert state_one.keys() == state_two.keys()
    for k in state_one:
        np.testing.assert_array_equal(state_one[k], state_two[k], err_msg=k)


@pytest.mark.parametrize("name", ["manual", "vwc"])
def test_with_a_workspace_the_gradients_land_in_its_packed_buffers(name: str) -> None:
    """Bit for bit the gradients without one; float64 x on float32 weights gets fresh ones.
    (The tape returns fresh arrays: checking `into` against every input costs it more than
    the packed update saves; its epochs are still the plain loop's, tested elsewhere.)"""
    rng = np.random.default_rng(5)
    net, params = TrainConfig(hidden=(7, 5)).net(12), _params()
    x = rng.standard_normal((9, 12)).astype(np.float32)
    y = targets(net.loss, rng.integers(0, 10, 9), np.float32)
    mod, ws = strategies.get(name), Workspace()
    plain = mod.value_and_grads(net, params, x, y)
    into = mod.value_and_grads(net, params, x, y, workspace=ws)
    assert ws.gradients(params).holds(into.params)
    assert into.loss == plain.loss
    for a, b in zip(into.params.arrays(), plain.params.arrays()):
        np.testing.assert_array_equal(a, b)
    mixed = mod.value_and_grads(net, params, x.astype(np.float64), y, workspace=ws)
    assert not ws.gradients(params).holds(mixed.params)
