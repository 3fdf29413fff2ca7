"""bench's epoch phases: the GEMM floor, the peers' epochs and the busy-core phase are rows
of one table, with the arithmetic of their ratios (never a timing)."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import pytest

from fcgrad.bench import busy, epochs, peers
from fcgrad.bench.timing import BenchConfig, bench, gemm_flops
from fcgrad.nn import init_params

BUSY = "train epoch (one core busy)"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((640, 784)).astype(np.float32), rng.integers(0, 10, 640)


@pytest.fixture
def fake_peers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torch and jax as if installed: their epochs are callables that record their runs."""
    ran: list[str] = []

    def one(name: str) -> Any:
        return lambda: ran.append(name)

    monkeypatch.setattr(peers, "check_available", lambda names: None)
    monkeypatch.setattr(peers, "phases", lambda name, *a: {})
    monkeypatch.setattr(peers, "torch_epoch", lambda *a: one("torch"))
    monkeypatch.setattr(
        peers, "jax_epochs", lambda *a: {"jax scan": one("jax scan"), "jax step": one("jax step")}
    )
    return ran


def test_every_reference_is_a_row_of_the_epoch_phases(data: Any, fake_peers: list[str]) -> None:
    cfg = BenchConfig(
        repeat=3, train_epoch=True, strategies=("manual", "vwc"), compare=("torch", "jax")
    )
    result = bench(*data, cfg)
    by_phase: dict[str, list[str]] = {}
    for t in result.timings:
        by_phase.setdefault(t.phase, []).append(t.implementation)
    assert by_phase["train epoch"] == [
        "gemm reference", "manual", "vwc", "torch", "jax scan", "jax step",
    ]  # fmt: skip
    assert by_phase[BUSY] == ["gemm reference", "manual", "vwc"]
    assert sorted(set(fake_peers)) == ["jax scan", "jax step", "torch"]
    assert fake_peers.count("torch") == 1 + epochs.epoch_repeats(cfg)  # a warm-up, then timed


def test_the_ratios_are_medians_over_the_floor_and_the_fastest(data: Any) -> None:
    result = bench(*data, BenchConfig(repeat=3, train_epoch=True, strategies=("manual",)))
    for phase in ("train epoch", BUSY):
        rows = {t.implementation: t for t in result.timings if t.phase == phase}
        floor = rows["gemm reference"]
        fastest = min(statistics.median(t.times_ms) for t in rows.values())
        for t in rows.values():
            assert t.ratio_to_reference == pytest.approx(t.median_ms / floor.median_ms)
            assert t.ratio == pytest.approx(t.median_ms / fastest)
        assert floor.ratio_to_reference == 1.0
        assert floor.flops == gemm_flops((784, 50, 1), 640, "fwd+bwd weights")
    slow = result.busy_slowdowns()
    quiet = {t.implementation: t.median_ms for t in result.timings if t.phase == "train epoch"}
    busy_ms = {t.implementation: t.median_ms for t in result.timings if t.phase == BUSY}
    assert slow == {k: pytest.approx(busy_ms[k] / quiet[k]) for k in busy_ms}
    assert result.to_dict()["busy_slowdowns"] == slow


def test_the_floor_runs_the_steps_products_once_per_step(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """640 rows at batch 64: 10 steps of 5 products (x@w1, h@w2, h.T@g2, g2@w2.T, x.T@g1)."""
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = np.matmul

    def counted(a: Any, b: Any, *args: Any, **kw: Any) -> Any:
        calls.append((a.shape, b.shape))
        return real(a, b, *args, **kw)

    from fcgrad.nn import Loss, Net

    params = init_params(Net.mlp((784, 50, 10), Loss.cross_entropy), 0)
    floor = epochs.epoch_floor(params, data[0], 64)
    monkeypatch.setattr(np, "matmul", counted)
    floor()
    assert len(calls) == 10 * 5
    assert calls[:5] == [
        ((64, 784), (784, 50)), ((64, 50), (50, 10)),
        ((50, 64), (64, 10)), ((64, 10), (10, 50)), ((784, 64), (64, 50)),
    ]  # fmt: skip


def test_the_busy_helper_spins_while_asked_and_is_gone_after() -> None:
    with busy.one_core_busy(limit_s=60) as proc:
        assert proc.poll() is None  # it said it spins, and still does
    assert proc.poll() is not None
    with pytest.raises(RuntimeError), busy.one_core_busy(limit_s=60) as proc:
        raise RuntimeError("bench failed")
    assert proc.poll() is not None  # killed on the way out, too


def test_the_busy_helper_ends_by_itself_at_its_limit() -> None:
    with busy.one_core_busy(limit_s=0) as proc:
        assert proc.wait(timeout=60) == 0  # bounded: it stops on its own
