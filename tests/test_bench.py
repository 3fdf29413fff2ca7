"""The benchmark's bookkeeping (no timing assertions: timings are measured, never tested)."""

from __future__ import annotations

import numpy as np
import pytest

from fcgrad.bench import BenchConfig, bench, count_flops
from fcgrad.errors import ConfigError


def test_count_flops_hand_computed() -> None:
    # 784-50-1 on 1 row: forward 2*784*50 + 50 + 2*50*1 + 1 + 50 (relu) = 78601
    assert count_flops([784, 50, 1], 1, backward=False) == 78_601
    # backward: dW 2*784*50 + 2*50 + db 50 + 1, dX 2*50*1 + 2*784*50, relu mask 50
    assert count_flops([784, 50, 1], 1, backward=True) == 78_601 + 78_551 + 78_500 + 50
    assert (
        count_flops([784, 50, 1], 1, backward=True, input_grad=False) == 78_601 + 78_551 + 100 + 50
    )
    assert count_flops([784, 50, 1], 10, backward=True) == 10 * count_flops(
        [784, 50, 1], 1, backward=True
    )


def test_bench_reports_every_strategy_and_phase() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 784)).astype(np.float32), rng.integers(0, 10, 256)
    result = bench(x, y, BenchConfig(repeat=3, warmup=1))
    assert [(t.strategy, t.phase) for t in result.timings] == [
        (s, p) for s in ("manual", "vwc", "tape") for p in ("forward", "forward+backward")
    ]
    for t in result.timings:
        assert len(t.times_ms) == 3 and t.min_ms <= t.median_ms <= t.max_ms and t.ratio >= 1.0
    for phase in ("forward", "forward+backward"):
        assert min(t.ratio for t in result.timings if t.phase == phase) == 1.0
    d = result.to_dict()
    assert d["rows_used"] == 256 and d["sizes"] == [784, 50, 1]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"repeat": 0}, "--repeat"),
        ({"warmup": -1}, "--warmup"),
        ({"rows": 0}, "--rows"),
        ({"strategies": ("x",)}, "unknown"),
    ],
)
def test_bad_config(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BenchConfig(**kw).validate()  # type: ignore[arg-type]
