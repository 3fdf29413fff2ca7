"""The lesson's core on the synthetic set: each section's numbers and its pass/FAIL logic."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from fcgrad.cli import render_lesson
from fcgrad.data.normalize import normalize_pair
from fcgrad.errors import ConfigError
from fcgrad.jsonio import finite
from fcgrad.lesson import Lesson, run_lesson, sections, trace
from fcgrad.lesson.report import near, small
from fcgrad.nn.losses import Loss
from fcgrad.strategies import manual

KEYS = [
    "normalization", "sizes", "init", "initial_mse", "gradients", "call_trace", "scalars",
    "timings",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(synthetic: tuple[np.ndarray, ...]) -> tuple[Any, ...]:
    x_train, y_train, x_valid, y_valid = synthetic
    xt, xv, _, report = normalize_pair(x_train, x_valid)  # copies: the fixture is shared
    return xt, y_train, xv, y_valid, report


@pytest.fixture(scope="module")
def lesson(data: tuple[Any, ...]) -> Lesson:
    return run_lesson(*data, repeat=2, timing_rows=300)


def _section(lesson: Lesson, key: str) -> Any:
    (found,) = [s for s in lesson.sections if s.key == key]
    return found


def test_every_section_in_order_and_every_check_passes(lesson: Lesson) -> None:
    assert [s.key for s in lesson.sections] == KEYS
    assert lesson.ok, lesson.failures()
    assert lesson.n_checks == 51 and lesson.failures() == []


def test_normalization_gives_the_near_zero_checks(lesson: Lesson, data: tuple[Any, ...]) -> None:
    s = _section(lesson, "normalization")
    assert [c.name for c in s.checks] == ["train mean after", "train std after"]
    assert s.data["train_after"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert s.data["valid_before"] == {
        "mean": data[4].valid_before.mean,
        "std": data[4].valid_before.std,
    }


def test_sizes_are_n_m_c(lesson: Lesson) -> None:
    assert _section(lesson, "sizes").data == {"n": 3000, "m": 784, "c": 10}


def test_init_stats_follow_the_theory_and_kaiming_is_init_params(
    lesson: Lesson, data: tuple[Any, ...]
) -> None:
    s = _section(lesson, "init")
    k, n = s.data["kaiming"], s.data["naive"]
    assert k["w1_std"] == pytest.approx(math.sqrt(2 / 784)) and n["w1_std"] == pytest.approx(1 / 28)
    assert k["expected_relu_mean"] == pytest.approx(1 / math.sqrt(math.pi))
    assert k["expected_relu_std"] == pytest.approx(math.sqrt(1 - 1 / math.pi))
    # kaiming's sqrt(2/m) brings relu's second moment back to about 1; naive's halves it
    assert k["relu_mean"] ** 2 + k["relu_std"] ** 2 == pytest.approx(1.0, abs=0.15)
    assert n["relu_mean"] ** 2 + n["relu_std"] ** 2 == pytest.approx(0.5, abs=0.1)
    w1 = sections.lesson_params(0).layers[0].w
    relu = np.maximum(data[2] @ w1, 0)
    assert float(relu.mean()) == pytest.approx(k["relu_mean"], rel=1e-5)


def test_initial_mse_is_numpys_and_each_strategys(lesson: Lesson, data: tuple[Any, ...]) -> None:
    s = _section(lesson, "initial_mse")
    assert set(s.data["strategies"]) == {"manual", "vwc", "tape"}
    assert all(v == pytest.approx(s.data["mse"], rel=1e-5) for v in s.data["strategies"].values())
    assert s.data["zero_prediction_mse"] == pytest.approx(float(np.mean(data[3] ** 2.0)))


def test_gradients_include_testsame_and_the_input(lesson: Lesson) -> None:
    s = _section(lesson, "gradients")
    names = [c.name for c in s.checks]
    assert names[:2] == ["testSame manual", "testSame vwc"] and "testSame tape" in names
    assert "vwc x = manual" in names and "tape x = manual" in names
    assert len(names) == 13 and s.ok
    assert set(s.data["max_abs_error"]["tape"]) == {"w1", "b1", "w2", "b2", "x"}


def test_a_wrong_rule_fails_the_gradient_checks(
    data: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong(inp: Any, targ: np.ndarray) -> float:
        inp.grad = (1.0 / targ.shape[0]) * (inp.value - targ[:, None])  # lost the 2
        return float(np.mean(np.square(inp.value[:, 0] - targ)))

    monkeypatch.setitem(manual.LOSSES, Loss.mse, wrong)
    s = sections.gradients(data[0][:500], data[1][:500], sections.lesson_params(0))
    failed = {c.name for c in s.checks if not c.passed}
    assert not s.ok and "vwc w1 = manual" in failed and "tape x = manual" in failed
    assert not any(n.startswith("testSame") for n in failed)  # the shapes still agree


def test_the_call_trace_counts_square(lesson: Lesson) -> None:
    s = _section(lesson, "call_trace")
    naive = s.data["value, then gradient(at:)"]
    assert naive["calls"] == ["square", "square", "square'"] and naive["gradient"] == 6.0
    assert s.data["value with chain"]["counts"] == {"square": 1, "pullback": 1}
    assert s.data["tape value_and_grad"]["counts"] == {"square": 1, "square'": 1}
    assert s.ok


def test_a_way_that_calls_square_too_often_fails() -> None:
    def twice(x: np.float32, calls: list[str]) -> tuple[Any, Any]:
        trace.tape(x, calls)
        return trace.tape(x, calls)

    s = trace.call_trace({"tape twice": (twice, {"square": 1, "square'": 1})})
    assert [(c.name, c.value, c.passed) for c in s.checks] == [
        ("tape twice: square", "2x", False),
        ("tape twice: square'", "2x", False),
        ("tape twice: value, grad", "9, 6", True),
    ]


def test_the_scalar_examples(lesson: Lesson) -> None:
    s = _section(lesson, "scalars")
    squares = s.data["square"]
    assert [round(d["x"], 6) for d in squares] == [round(i / 10, 6) for i in range(10)]
    assert all(d["gradient"] == pytest.approx(2 * d["x"], abs=1e-6) for d in squares)
    assert s.data["sin_cos"]["gradient"] == pytest.approx(-3.0501623, abs=1e-6)
    assert len(s.checks) == 11 and s.ok


def test_timings_are_reported_not_checked(lesson: Lesson) -> None:
    s = _section(lesson, "timings")
    assert s.checks == [] and s.data["rows"] == 300 and s.data["repeat"] == 2
    for name in ("manual", "vwc", "tape"):
        t = s.data["strategies"][name]
        assert len(t["runs_ms"]) == 2 and t["min_ms"] <= t["average_ms"] <= t["max_ms"]
    assert s.notes[0].startswith("manual: average: ")


def test_check_helpers_never_pass_nan() -> None:
    assert not near("x", float("nan"), 0.0, 1.0).passed
    assert not small("x", float("nan"), 1.0).passed
    assert near("x", 0.5, 0.4, 0.15).passed and not near("x", 0.6, 0.4, 0.15).passed


def test_bad_counts_are_config_errors(data: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigError) as e:
        run_lesson(*data, repeat=0)
    assert e.value.param == "repeat"


def test_json_and_the_drawing(lesson: Lesson) -> None:
    d = json.loads(json.dumps(finite(lesson.to_dict())))
    assert d["ok"] is True and d["checks"] == 51 and list(d["sections"]) == KEYS
    assert d["sections"]["init"]["checks"][0]["passed"] is True
    console = Console(width=80, force_terminal=True, color_system=None, record=True)
    console.print(render_lesson.lesson(lesson))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 80 and not any("…" in line for line in lines)
    assert lines[-1] == "all 51 checks pass" and "FAIL" not in "\n".join(lines)
