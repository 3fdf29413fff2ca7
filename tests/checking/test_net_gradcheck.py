"""The lesson's gradient check: it passes on the three strategies and fails on a wrong rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fcgrad.checking.net_gradcheck import GradCheckConfig, compare, gradcheck
from fcgrad.engine import ops
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.strategies import manual, vwc


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((400, 784)).astype(np.float32), rng.integers(0, 10, 400)


@pytest.mark.parametrize("loss", list(Loss))
def test_passes_on_every_strategy(data: tuple[np.ndarray, np.ndarray], loss: Loss) -> None:
    result = gradcheck(*data, GradCheckConfig(loss=loss, fd_rows=100))
    assert result.ok, result.failures()
    refs = {(r.strategy, r.reference) for r in result.rows}
    assert refs == {
        ("manual", "testSame"), ("vwc", "testSame"), ("tape", "testSame"),
        ("manual", "vwc"), ("manual", "tape"), ("vwc", "tape"),
        ("manual", "central diff"), ("vwc", "central diff"), ("tape", "central diff"),
    }  # fmt: skip
    same = [r for r in result.rows if r.reference == "testSame"]
    assert [r.strategy for r in same] == ["manual", "vwc", "tape"] and all(r.passed for r in same)
    assert {r.parameter for r in result.rows} == {"all", "w1", "b1", "w2", "b2", "x"}


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("loss", list(Loss))
def test_every_activation_and_loss_passes_in_a_deeper_net(
    data: tuple[np.ndarray, np.ndarray], loss: Loss, activation: Activation
) -> None:
    """The acceptance's 64-32 net, for every activation and loss, all three strategies."""
    cfg = GradCheckConfig(loss=loss, hidden=(64, 32), fd_rows=30, activation=activation)
    result = gradcheck(*data, cfg)
    assert result.ok, result.failures()
    assert {r.parameter for r in result.rows} >= {"w3", "b3", "x"}


@pytest.mark.parametrize(
    ("activation", "wrong"),
    [
        (Activation.tanh, lambda inp, out: setattr(inp, "grad", out.grad * (1.0 - out.value))),
        (Activation.sigmoid, lambda inp, out: setattr(inp, "grad", out.grad * out.value)),
        (Activation.leaky_relu, lambda inp, out: setattr(inp, "grad", out.grad * (inp.value > 0))),
    ],
    ids=["tanh without the square", "sigmoid without 1 - s", "leaky-relu without its slope"],
)
def test_fails_on_a_wrong_activation_rule(
    data: Any, monkeypatch: pytest.MonkeyPatch, activation: Activation, wrong: Any
) -> None:
    monkeypatch.setitem(manual.ACTIVATIONS, activation, (manual.ACTIVATIONS[activation][0], wrong))
    cfg = GradCheckConfig(strategies=("manual",), fd_rows=50, activation=activation)
    failing = _failing(gradcheck(*data, cfg))
    assert {("manual", "w1", "central diff"), ("manual", "w1", "vwc")} <= failing
    assert ("manual", "w2", "vwc") not in failing  # w2's gradient does not pass through it


def test_deeper_net(data: tuple[np.ndarray, np.ndarray]) -> None:
    result = gradcheck(*data, GradCheckConfig(hidden=(16, 8), loss=Loss.cross_entropy, fd_rows=50))
    assert result.ok
    assert {r.parameter for r in result.rows} >= {"w3", "b3"}


def _failing(result: Any) -> set[tuple[str, str, str]]:
    return {(r.strategy, r.parameter, r.reference) for r in result.failures()}


def test_fails_when_mse_grad_drops_the_factor_two(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong(inp: manual.Tensor, targ: np.ndarray) -> float:
        inp.grad = (inp.value - targ[:, None]) / targ.shape[0]
        return float(np.mean(np.square(inp.value[:, 0] - targ)))

    monkeypatch.setitem(manual.LOSSES, Loss.mse, wrong)  # the row of manual's table
    result = gradcheck(*data, GradCheckConfig(strategies=("manual",), fd_rows=100))
    assert not result.ok
    failing = _failing(result)
    for param in ("w1", "b1", "w2", "b2", "x"):
        assert ("manual", param, "central diff") in failing
        assert ("manual", param, "vwc") in failing
    row = next(r for r in result.failures() if r.parameter == "b2" and r.reference == "vwc")
    assert row.worst_index == (0,)
    assert row.value == pytest.approx(
        row.ref_value / 2, rel=1e-5
    )  # both values shown: half of the right one


def test_fails_when_vwc_relu_has_the_wrong_sign(data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(x: np.ndarray) -> Any:
        mask = x > 0
        return ops.relu(x), lambda g: -g * mask

    monkeypatch.setitem(vwc.ACTIVATIONS, Activation.relu, wrong)
    result = gradcheck(*data, GradCheckConfig(strategies=("vwc",), fd_rows=100))
    failing = _failing(result)
    assert ("vwc", "w1", "central diff") in failing and ("vwc", "w1", "manual") in failing
    assert ("vwc", "w2", "manual") not in failing  # w2's gradient does not pass through the ReLU


def test_fails_when_a_tape_rule_drops_the_factor_two(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ops.square.vjps, 0, lambda g, ans, x: ops.mul(g, x))
    result = gradcheck(*data, GradCheckConfig(strategies=("tape",), fd_rows=100))
    assert ("tape", "w1", "central diff") in _failing(result)
    assert ("tape", "b2", "manual") in _failing(result)


def test_fails_on_a_gradient_of_the_wrong_shape(data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    original = manual.lin_grad

    def wrong(inp: Any, out: Any, w: Any, b: Any, **kw: Any) -> None:
        original(inp, out, w, b, **kw)
        b.grad = b.grad[None, :]  # (1, n) instead of (n,): the lesson's testSame must catch it

    monkeypatch.setitem(manual.LAYERS, "dense", (manual.lin, wrong))
    result = gradcheck(*data, GradCheckConfig(strategies=("manual",), fd_rows=50))
    shape_rows = [r for r in result.failures() if "shape" in r.note]
    assert shape_rows and shape_rows[0].parameter == "b1"


def test_compare_hand_computed() -> None:
    row = compare("s", "p", np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), "ref", 0.0, 0.1)
    assert not row.passed and row.worst_index == (2,)
    assert row.max_abs_error == 0.5 and row.max_rel_error == pytest.approx(0.5 / 3.5)
    assert (row.value, row.ref_value) == (3.5, 3.0)
    assert compare("s", "p", np.array([1.0, 2.0]), np.array([1.05, 2.0]), "ref", 0.0, 0.1).passed


def test_compare_rel_error_is_floored_at_zero_vs_zero() -> None:
    row = compare("s", "p", np.zeros(3), np.zeros(3), "ref", 0.0, 1e-5)
    assert row.passed and row.max_rel_error == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_fail(bad: float) -> None:
    row = compare("s", "p", np.array([1.0, bad]), np.array([1.0, 2.0]), "ref", 1e9, 1e9)
    assert not row.passed and row.worst_index == (1,) and "non-finite" in row.note
    assert np.isnan(row.max_abs_error)
    assert not compare("s", "p", np.array([np.nan]), np.array([np.nan]), "ref", 1e9, 1e9).passed


def test_compare_chunks_find_the_worst_element_far_in() -> None:
    a = np.ones((600, 784), np.float32)
    r = a.copy()
    r[599, 700] = 2.0
    row = compare("s", "x", a, r, "ref", 0.0, 1e-4)
    assert row.worst_index == (599, 700) and not row.passed


def test_a_small_error_in_one_element_is_caught_and_located(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = manual.lin_grad
    spoiled: list[int] = []

    def slightly_wrong(inp: Any, out: Any, w: Any, b: Any, **kw: Any) -> None:
        original(inp, out, w, b, **kw)
        if b.grad.shape == (50,):  # b1: its largest element off by 0.1%
            spoiled.append(int(np.argmax(np.abs(b.grad))))
            b.grad = b.grad.copy()
            b.grad[spoiled[-1]] *= 1 + 1e-3

    monkeypatch.setitem(manual.LAYERS, "dense", (manual.lin, slightly_wrong))
    result = gradcheck(*data, GradCheckConfig(strategies=("manual",), samples=50, fd_rows=100))
    failing = {(r.parameter, r.reference): r for r in result.failures()}
    assert set(failing) == {("b1", "vwc"), ("b1", "tape"), ("b1", "central diff")}
    for row in failing.values():
        assert row.worst_index[0] in spoiled  # the spoiled element, in that run
        assert row.value == pytest.approx(row.ref_value * (1 + 1e-3), rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_false_alarm_from_rounding_with_many_rows(seed: int) -> None:
    # Differencing a mean over thousands of rows with h = 1e-6 amplifies float64 rounding;
    # the tolerance must allow for it (this failed before the noise term was added).
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5000, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 5000)
    result = gradcheck(x, labels, GradCheckConfig(strategies=("tape",), fd_rows=5000, seed=seed))
    assert result.ok, result.failures()


def test_relu_exactly_at_zero_is_counted_as_a_kink_not_a_failure() -> None:
    # b1 = 0 at init, so a row of zeros puts every hidden pre-activation of row 0 at
    # exactly 0: perturbing any b1[j] or x[0, i] crosses ReLU's kink at the point.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 784)).astype(np.float32)
    x[0] = 0.0
    labels = rng.integers(0, 10, 100)
    result = gradcheck(x, labels, GradCheckConfig(samples=50, fd_rows=100))
    assert result.ok, result.failures()
    b1 = [r for r in result.rows if r.parameter == "b1" and r.reference == "central diff"]
    assert len(b1) == 3 and all(r.kinks == 50 and r.checked == 50 for r in b1)


def test_gradcheck_names_each_step_and_counts_them_first(data: Any) -> None:
    from tests.recorder import Recorder

    heard = Recorder()
    gradcheck(*data, GradCheckConfig(strategies=("vwc",), fd_rows=20), heard)
    # gradients of vwc and of its references manual and tape; then for vwc, the float64
    # pass and one step per array (w1, b1, w2, b2, x)
    assert heard.totals == [3 + 1 + 5] and len(heard.labels) == 9
    assert heard.labels[:3] == [f"gradients of {s} on 400 rows" for s in ("manual", "vwc", "tape")]
    assert heard.labels[-1] == "vwc: central differences of x"
