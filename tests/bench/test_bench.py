"""The benchmark's bookkeeping (no timing assertions: timings are measured, never tested)."""

from __future__ import annotations

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.bench import peers
from fcgrad.bench.timing import BenchConfig, bench, count_flops, gemm_flops
from fcgrad.errors import ConfigError
from fcgrad.nn import Activation, Loss, Net, init_params
from fcgrad.nn.losses import targets
from tests.recorder import Recorder


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
    assert [t.implementation for t in epochs] == ["gemm reference", "manual", "tape"]
    steps = [t for t in result.timings if t.phase == "batch step"]
    assert [t.implementation for t in steps] == ["manual", "tape"]
    assert min(t.ratio for t in steps) == 1.0 and all(len(t.times_ms) == 3 for t in steps)
    for step, epoch in zip(steps, epochs[1:]):  # a step's FLOPs: one batch of the epoch's ten
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
        ({"repeat": 0}, "repeat"),
        ({"warmup": -1}, "warmup"),
        ({"rows": 0}, "rows"),
        ({"batch_size": 0}, "batch_size"),
        ({"hidden": ()}, "hidden"),
        ({"strategies": ("x",)}, "strategy"),
    ],
)
def test_bad_config_names_the_parameter_not_a_flag(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}") as raised:
        BenchConfig(**kw).validate()  # type: ignore[arg-type]
    assert raised.value.param == message and "--" not in str(raised.value)


@pytest.mark.parametrize("activation", list(Activation))
@pytest.mark.parametrize("loss", list(Loss))
def test_the_numpy_and_autograd_peers_compute_the_same_gradients(
    loss: Loss, activation: Activation
) -> None:
    """Every activation and loss of the description, in the hand-written numpy peer and in
    HIPS autograd (an independent library), against the manual strategy in float64."""
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((40, 30)), rng.integers(0, 10, 40)
    net = Net.mlp((30, 12, 8, loss.n_out), loss, activation)
    p, y = init_params(net, 0, np.float64), targets(loss, labels, np.float64)
    ref = strategies.get("manual").value_and_grads(net, p, x, y, input_grad=True)
    value, grads, gx = peers.phases("numpy", net, p, x, y)["fwd+bwd all"]()
    assert value == pytest.approx(ref.loss, rel=1e-12)
    want = [a for layer in reversed(ref.params.layers) for a in (layer.w, layer.b)]
    for got, exp in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gx, ref.input, rtol=1e-10, atol=1e-13)
    value, (gws, gx) = peers.phases("autograd", net, p, x, y)["fwd+bwd all"]()
    assert value == pytest.approx(ref.loss, rel=1e-12)
    for got, exp in zip(gws, p.arrays(), strict=True):
        assert got.shape == exp.shape
    for got, exp in zip(gws, ref.params.arrays(), strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gx, ref.input, rtol=1e-10, atol=1e-13)


def test_every_peer_table_has_a_row_for_every_kind() -> None:
    """The peers' tables that need no library installed; torch's and jax's are built the same
    way and checked when those are installed."""
    assert set(peers.NUMPY_ACTIVATIONS) == set(Activation)
    assert set(peers.NUMPY_LOSSES) == set(Loss)


def test_bench_names_every_run_it_makes_and_counts_them_first() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 784)).astype(np.float32), rng.integers(0, 10, 128)
    heard = Recorder()
    cfg = BenchConfig(repeat=3, warmup=1, strategies=("manual", "tape"), train_epoch=True)
    bench(x, y, cfg, heard)
    # 3 implementations x 3 phases x 4 runs, 2 strategies x 4 step runs, and
    # (1 + 1) epochs of the floor and the 2 strategies, quiet and with a core busy
    assert heard.totals == [36 + 8 + 12] and len(heard.labels) == 56
    assert heard.labels[0] == "gemm reference: forward (warm-up)"
    assert heard.labels[-1] == "tape: train epoch (one core busy) (1)"
