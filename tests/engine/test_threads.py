"""The BLAS thread policy: which workload runs on how many threads, and that training and
gradcheck run under it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.engine import threads
from fcgrad.engine.threads import BATCH_ROWS, ThreadPolicy, blas_threads, blas_threads_now
from fcgrad.errors import ConfigError
from fcgrad.training.train import TrainConfig, train


def test_the_default_policy_is_one_thread_for_batches_and_every_core_for_full_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "cores", lambda: 8)
    policy = ThreadPolicy.default()
    assert (policy.batch, policy.full, policy.fixed) == (1, 8, False)
    assert policy.for_rows(64) == policy.for_rows(BATCH_ROWS) == 1
    assert policy.for_rows(BATCH_ROWS + 1) == policy.for_rows(60_000) == 8
    assert policy.describe() == "1 BLAS thread for batch steps, 8 for full-batch passes"


def test_threads_fix_both_and_must_be_positive() -> None:
    policy = ThreadPolicy.fixed_at(3)
    assert (policy.batch, policy.full, policy.for_rows(64), policy.for_rows(10**6)) == (3,) * 4
    assert policy.describe() == "3 BLAS threads" and ThreadPolicy.fixed_at(1).describe() == (
        "1 BLAS thread"
    )
    assert ThreadPolicy.fixed_at(None) == ThreadPolicy.default()
    with pytest.raises(ConfigError, match=r"^threads must be from 1 to 1,024, got 0") as e:
        ThreadPolicy.fixed_at(0)
    assert e.value.param == "threads"


def test_fewer_threads_than_cores_start_the_pool_once_on_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenBLAS's single-threaded products are faster once its pool has run a product (the
    module's docstring has the figures): the first limit below the cores runs one product on
    every core; later ones and a limit at the cores run none."""
    seen: list[int] = []
    real_matmul = np.matmul

    def matmul(*args: Any, **kwargs: Any) -> Any:
        seen.append(blas_threads_now())
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(threads, "_pool_started", [False])
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads.np, "matmul", matmul)
    with blas_threads(2):
        assert seen == []
    with blas_threads(1):
        assert seen == [2]  # the one product, on both cores
    with blas_threads(1):
        pass
    assert len(seen) == 1


def test_one_core_starts_no_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(threads, "_pool_started", [False])
    monkeypatch.setattr(threads, "cores", lambda: 1)
    monkeypatch.setattr(threads.np, "matmul", lambda *a: seen.append(a))
    with blas_threads(1):
        pass
    threads.start_pool()
    assert seen == []


def test_the_pool_is_limited_within_and_restored_after() -> None:
    before = blas_threads_now()
    with blas_threads(1):
        assert blas_threads_now() == 1
    assert blas_threads_now() == before


def test_training_steps_run_on_the_batch_threads_and_evaluation_on_the_full(
    monkeypatch: pytest.MonkeyPatch, synthetic: Any
) -> None:
    seen: list[int] = []
    tape = strategies.get("tape")

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(tape, name)

        def value_and_grads(self, *args: Any, **kw: Any) -> Any:
            seen.append(blas_threads_now())
            return tape.value_and_grads(*args, **kw)

    from fcgrad.training import train as train_module

    evaluated: list[int] = []
    real_evaluate = train_module.evaluate

    def spy_evaluate(*args: Any) -> Any:
        evaluated.append(blas_threads_now())
        return real_evaluate(*args)

    monkeypatch.setattr(train_module.strategies, "get", lambda name: Spy())
    monkeypatch.setattr(train_module, "evaluate", spy_evaluate)
    x, y, xv, yv = (a[:256] for a in synthetic)
    policy = ThreadPolicy(batch=1, full=2)
    result = train(x, y, xv, yv, TrainConfig(epochs=2), threads=policy)
    assert seen and set(seen) == {1} and evaluated == [2, 2]
    assert result.threads == policy and result.to_dict()["threads"] == policy.to_dict()


def test_a_fixed_single_thread_trains_exactly_as_the_default_policy(synthetic: Any) -> None:
    """The default runs batch steps on one thread, so --threads 1 changes no bit."""
    x, y, xv, yv = (a[:640] for a in synthetic)
    a = train(x, y, xv, yv, TrainConfig(epochs=1))
    b = train(x, y, xv, yv, TrainConfig(epochs=1), threads=ThreadPolicy.fixed_at(1))
    for p, q in zip(a.params.arrays(), b.params.arrays(), strict=True):
        np.testing.assert_array_equal(p, q)
