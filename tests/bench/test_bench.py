"""The benchmark's bookkeeping (no timing assertions: timings are measured, never tested)."""

from __future__ import annotations

import numpy as np
import pytest

from fcgrad.bench.timing import BenchConfig, bench, count_flops, gemm_flops
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


def test_gemm_flops_hand_computed() -> None:
    # 784-50-1 on one row: forward 2*784*50 + 2*50*1 = 78,500; the weight gradients as many;
    # the input side 2*50*1 (to the hidden layer) plus 2*784*50 (to x) for "all"
    assert gemm_flops([784, 50, 1], 1, "forward") == 78_500
    assert gemm_flops([784, 50, 1], 1, "fwd+bwd all") == 3 * 78_500
    assert gemm_flops([784, 50, 1], 1, "fwd+bwd weights") == 2 * 78_500 + 100


def test_bench_reports_every_implementation_and_phase() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 784)).astype(np.float32), rng.integers(0, 10, 256)
    result = bench(x, y, BenchConfig(repeat=3, warmup=1, compare=("autograd",)))
    impls = ["gemm reference", "manual", "vwc", "tape", "autograd"]
    phases = ["forward", "fwd+bwd all", "fwd+bwd weights"]
    assert [(t.implementation, t.phase) for t in result.timings] == [
        (i, p) for i in impls for p in phases
    ]
    for t in result.timings:
        assert len(t.times_ms) == 3 and t.min_ms <= t.median_ms <= t.max_ms and t.ratio >= 1.0
        assert t.peak_mb is not None and t.peak_mb > 0  # all numpy here
    for phase in phases:
        assert min(t.ratio for t in result.timings if t.phase == phase) == 1.0
        ref = next(
            t for t in result.timings if t.phase == phase and t.implementation == "gemm reference"
        )
        assert ref.ratio_to_reference == 1.0
    d = result.to_dict()
    assert d["rows_used"] == 256 and d["sizes"] == [784, 50, 1]


def test_bench_train_epoch() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((640, 784)).astype(np.float32), rng.integers(0, 10, 640)
    result = bench(x, y, BenchConfig(repeat=3, train_epoch=True, strategies=("manual", "tape")))
    epochs = [t for t in result.timings if t.phase == "train epoch"]
    assert [t.implementation for t in epochs] == ["manual", "tape"]
    steps = [t for t in result.timings if t.phase == "batch step"]
    assert [t.implementation for t in steps] == ["manual", "tape"]
    assert min(t.ratio for t in steps) == 1.0 and all(len(t.times_ms) == 3 for t in steps)
    # per step, not per run of STEPS_PER_RUN steps: a step is far shorter than the epoch
    for step, epoch in zip(steps, epochs):
        assert step.median_ms < epoch.median_ms / 5
        assert step.flops == epoch.flops * 64 // 640


def test_peers_unknown_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from fcgrad.bench import peers

    with pytest.raises(ConfigError, match="choose from"):
        peers.check_available(("tensorflow",))
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        ConfigError, match=r"torch is not installed \(pip install 'fcgrad\[peers\]'\)"
    ):
        peers.check_available(("torch",))


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


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_the_hand_written_numpy_peer_computes_the_same_gradients(loss: str) -> None:
    from fcgrad import strategies
    from fcgrad.bench import peers
    from fcgrad.nn import model
    from fcgrad.nn.losses import Loss, targets

    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((100, 784)).astype(np.float32), rng.integers(0, 10, 100)
    lf = Loss(loss)
    p, y = model.init_params([784, 50, lf.n_out], 0), targets(lf, labels)
    value, grads, gx = peers.phases("numpy", p, x, y, lf)["fwd+bwd all"]()
    ref = strategies.get("manual").value_and_grads(p, x, y, lf, input_grad=True)
    assert value == pytest.approx(ref.loss, rel=1e-6)
    want = [
        ref.params.layers[1].w,
        ref.params.layers[1].b,
        ref.params.layers[0].w,
        ref.params.layers[0].b,
    ]
    for got, exp in zip(grads, want):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gx, ref.input, rtol=1e-5, atol=1e-9)
