"""The gradcheck and bench tables at 80 and 120 columns on a terminal: every line fits,
nothing is cut to '…', and the status column and whole numbers are there."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from fcgrad.bench.timing import BenchConfig, bench
from fcgrad.checking.net_gradcheck import GradCheckConfig, gradcheck
from fcgrad.cli import render, render_check
from fcgrad.strategies import manual


def _drawn(renderable: Any, width: int) -> list[str]:
    console = Console(width=width, force_terminal=True, color_system=None, record=True)
    console.print(renderable)
    return console.export_text().splitlines()


def _cells(line: str) -> str:
    """A table line without its box rules: wide tables frame their cells, narrow ones not."""
    return line.replace("│", " ").strip()


@pytest.fixture(scope="module")
def checked() -> Any:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 784)).astype(np.float32), rng.integers(0, 10, 300)
    return gradcheck(x, y, GradCheckConfig(fd_rows=40, hidden=(16,)))


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_gradcheck_table_fits(checked: Any, width: int) -> None:
    lines = _drawn(render.gradcheck_table(checked), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    rows = [_cells(line) for line in lines if _cells(line).startswith(("manual", "vwc", "tape"))]
    assert len(rows) == len(checked.rows) and all(row.endswith("pass") for row in rows)
    assert any("-0.0" in line or "e-" in line or "0," in line for line in rows)  # numbers shown
    assert lines[-1].startswith("all ") and "checks pass" in lines[-1]


def test_a_failure_at_80_columns_shows_its_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def wrong(inp: Any, targ: np.ndarray) -> float:
        inp.grad = (inp.value - targ[:, None]) / targ.shape[0]  # the factor 2 dropped
        return float(np.mean(np.square(inp.value[:, 0] - targ)))

    from fcgrad.nn.losses import Loss

    monkeypatch.setitem(manual.LOSSES, Loss.mse, wrong)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((200, 784)).astype(np.float32), rng.integers(0, 10, 200)
    result = gradcheck(x, y, GradCheckConfig(strategies=("manual",), fd_rows=40, hidden=(8,)))
    lines = _drawn(render.gradcheck_table(result), 80)
    assert max(map(len, lines)) <= 80
    fails = [line for line in lines if line.startswith("FAIL manual b2 vs vwc")]
    assert fails and "against" in fails[0]  # the value and the reference's, in full
    assert "checks FAIL" in lines[-1]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_bench_table_fits(width: int) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 784)).astype(np.float32), rng.integers(0, 10, 256)
    result = bench(x, y, BenchConfig(repeat=2, train_epoch=True, strategies=("manual", "tape")))
    lines = _drawn(render.bench_table(result), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    for impl in ("gemm reference", "manual", "tape"):
        assert any(_cells(line).startswith(impl) for line in lines)
    for phase in ("forward", "fwd+bwd all", "fwd+bwd weights", "batch step", "train epoch"):
        assert any(phase in line for line in lines)


def test_the_training_bar_says_epoch_k_of_n_the_mean_loss_and_the_times() -> None:
    from rich.live import Live

    console = Console(width=80, force_terminal=True, color_system=None, record=True)
    with Live(console=console, auto_refresh=False) as live:
        display = render.TrainDisplay(live, "title", epochs=5)
        display.start_epoch(2, 938)
        for loss in (1.0, 2.0, 3.0):
            display.step(loss)
        display._last = 0.0  # (the bar redraws at most every 0.1 s; now, for the test)
        display.step(6.0)
        console.print(display._bar)
    line = [x for x in console.export_text().splitlines() if x.startswith("epoch 2/5")][-1]
    assert "4/938" in line and "mean loss 3.0000" in line  # (1 + 2 + 3 + 6) / 4
    assert "elapsed" in line and "left" in line and len(line) <= 80


@pytest.mark.parametrize("width", [80, 120])
def test_a_check_grads_report_fits_and_keeps_its_status_and_numbers(width: int) -> None:
    from fcgrad import check_grads, ops

    w, x = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(-1, 2, 20).reshape(5, 4)

    def f(w: Any, x: Any) -> Any:
        return ops.sum(ops.relu(x @ w))

    def wrong(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = (x @ w > 0).astype(float)
        return x.T @ m * 1.01, m @ w.T  # w's gradient 1% too large

    report = check_grads(f, (w, x), grad=wrong)
    lines = _drawn(render_check.check_report(report), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    text = " ".join(lines)
    assert "status FAIL" in text or " FAIL " in text
    worst = report.leaves[0].worst
    assert worst is not None and f"{worst.analytic:.8g}" in "".join(lines)  # whole, not cut


@pytest.mark.parametrize("width", [80, 120])
def test_the_download_and_normalize_tables_fit(width: int, synthetic: Any) -> None:
    from pathlib import Path

    from fcgrad.data import MNIST_FILES
    from fcgrad.data.normalize import normalize_pair
    from fcgrad.data.report import DownloadReport, FileResult

    mirror = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # a long one: it was folded
    dead = "http://127.0.0.1:9/"  # failed first for each file: a line below the table
    rows = [
        FileResult(
            f.name,
            Path(f.name),
            9_719_438,
            "0" * 64,
            "downloaded",
            mirror + f.name,
            [(dead + f.name, "connection refused")],
        )
        for f in MNIST_FILES
    ]
    lines = _drawn(render.download_table(DownloadReport(rows)), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    assert sum("│ downloaded │" in line for line in lines) == 4
    assert lines[-2:] == [
        f"downloaded from {mirror}",  # whole, on a line of its own
        f"{dead} failed for 4 files (connection refused)",
    ]
    other = "http://127.0.0.1:8765/"  # two mirrors used: numbered in a column
    rows[1] = dataclasses.replace(rows[1], mirror=other + rows[1].name)
    rows[2] = dataclasses.replace(rows[2], status="cached", mirror=None)
    lines = _drawn(render.download_table(DownloadReport(rows)), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    assert [line.split("│")[-2].strip() for line in lines if "ubyte" in line] == ["1", "2", "", "1"]
    assert lines[-3:-1] == [f"mirror 1: {mirror}", f"mirror 2: {other}"]
    x, _, xv, _ = synthetic
    *_, report = normalize_pair(x, xv)
    lines = _drawn(render.normalize_table(report), width)
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    assert sum(line.rstrip("│ ").endswith("pass") for line in lines) == len(report.checks)


@pytest.mark.parametrize("width", [80, 120])
def test_the_download_bar_keeps_its_figures_at_80_columns(width: int) -> None:
    """The whole URL in the row cut the bar and the bytes away at 80 columns; now the
    host comes last and only where there is room, and is never read as markup."""
    console = Console(width=width, force_terminal=True, color_system=None, record=True)
    with render.download_bar(console) as bar:
        bar.start("train-images-idx3-ubyte.gz", 9_719_438, "http://[::1]:8765/train-images")
        bar.advance(4_719_438)
        bar.start("t10k-labels-idx1-ubyte.gz", None, "/srv/mirror/t10k-labels-idx1-ubyte.gz")
        bar.advance(1_000)
        progress = bar._progress
        progress.stop()
        console.print(progress.make_tasks_table(progress.tasks))
    lines = console.export_text().splitlines()[-2:]
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
    assert lines[0].startswith("train-images-idx3-ubyte.gz ━") and "4.7/9.7 MB" in lines[0]
    assert lines[1].startswith("t10k-labels-idx1-ubyte.gz  ━") and "1.0/? kB" in lines[1]
    hosts = ("[::1]:8765" in lines[0], lines[1].endswith(" /srv/mirror"))
    assert hosts == ((True, True) if width >= 120 else (False, False))
