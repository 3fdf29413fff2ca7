"""check_grads: it passes on correct gradients and fails, with a useful report, on wrong rules."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from fcgrad import custom_vjp, grad, hvp
from fcgrad.checking.check_grads import PrecisionWarning, check_grads
from fcgrad.checking.kinks import MAX_KINKS
from fcgrad.engine import autodiff, ops
from fcgrad.errors import ConfigError, GradCheckFailed, UserCodeError
from fcgrad.nn import Net, init_params
from fcgrad.nn.losses import Loss
from fcgrad.strategies import manual, tape

rng = np.random.default_rng(0)
X34, Y4 = rng.standard_normal((3, 4)), rng.standard_normal(4)


# ------------------------------------------------------------------- passes


def test_passes_on_the_lessons_loss_with_the_tape() -> None:
    x, y = rng.standard_normal((50, 784)), rng.integers(0, 10, 50).astype(np.float64)
    params = init_params([784, 50, 1], 0, np.float64)
    report = check_grads(lambda p, x: tape.mse(tape.model(Net.like(p), p, x), y), (params, x))
    assert report.ok, report.problems()
    names = [leaf.name for leaf in report.leaves]
    assert names == [
        "args[0].layers[0].w",
        "args[0].layers[0].b",
        "args[0].layers[1].w",
        "args[0].layers[1].b",
        "args[1]",
    ]
    assert [leaf.checked for leaf in report.leaves] == [20, 20, 20, 1, 20]
    assert len(report.directions) == 3 and all(d.ok for d in report.directions)


@pytest.mark.parametrize("loss", list(Loss))
def test_passes_on_the_manual_strategy_as_a_hand_written_gradient(loss: Loss) -> None:
    x, labels = rng.standard_normal((20, 30)), rng.integers(0, 10, 20)
    y = labels.astype(np.float64) if loss is Loss.mse else labels
    params = init_params([30, 8, 6, loss.n_out], 1, np.float64)

    def f(p: Any) -> Any:
        return (
            tape.mse(tape.model(Net.like(p), p, x), y)
            if loss is Loss.mse
            else tape.cross_entropy(tape.model(Net.like(p), p, x), y)
        )

    def g(p: Any) -> Any:
        return manual.value_and_grads(Net.like(p, loss), p, x, y).params

    report = check_grads(f, (params,), grad=g, full=True)
    assert report.ok, report.problems()
    assert sum(leaf.checked for leaf in report.leaves) == sum(a.size for a in params.arrays())


# ------------------------------------------------------------------- deliberately wrong rules


WRONG_RULES = {
    "dropped factor of 2 in square": (
        lambda mp: mp.setitem(ops.square.vjps, 0, lambda g, ans, x: ops.mul(g, x)),
        lambda x, y: ops.sum(ops.square(x)),
        "coordinates: args[0]",
    ),
    "wrong sign in sin": (
        lambda mp: mp.setitem(ops.sin.vjps, 0, lambda g, ans, x: ops.neg(ops.mul(g, ops.cos(x)))),
        lambda x, y: ops.sum(ops.sin(x)),
        "coordinates: args[0]",
    ),
    "missing 1/N in mean": (
        lambda mp: mp.setitem(
            ops.mean.vjps,
            0,
            lambda g, ans, x, axis=None, keepdims=False: ops.broadcast_to(g, np.shape(x)),
        ),
        lambda x, y: ops.mean(ops.sin(x)),
        "coordinates: args[0]",
    ),
    "assignment instead of accumulation": (
        lambda mp: mp.setattr(autodiff, "accumulate", lambda total, more: more),
        lambda x, y: ops.sum(x * x),
        "coordinates: args[0]",
    ),
    "missing unbroadcast": (
        lambda mp: mp.setitem(ops.add.vjps, 1, lambda g, ans, x, y: g),
        lambda x, y: ops.sum(ops.sin(x + y)),
        "structure: gradients have the inputs' shapes",
    ),
}


@pytest.mark.parametrize("name", list(WRONG_RULES))
def test_fails_with_a_report_on_a_wrong_rule(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_grads(WRONG_RULES[name][1], (X34, Y4)).ok  # right before the rule is broken
    patch, f, first_problem = WRONG_RULES[name]
    patch(monkeypatch)
    report = check_grads(f, (X34, Y4))
    assert not report.ok
    assert report.problems()[0].startswith(first_problem), report.problems()
    with pytest.raises(GradCheckFailed, match=r"check_grads\(.*\): "):
        report.raise_if_failed()


def test_a_failure_names_the_element_and_both_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ops.square.vjps, 0, lambda g, ans, x: ops.mul(g, x))
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    report = check_grads(lambda x: ops.sum(ops.square(x)), (x,), full=True)
    leaf = report.leaves[0]
    assert leaf.n_failures == 4 and leaf.worst is not None
    assert leaf.worst.index == (1, 1)  # largest error: 2*4 - 4 = 4
    assert leaf.worst.analytic == pytest.approx(4.0) and leaf.worst.numeric == pytest.approx(
        8.0, rel=1e-8
    )
    # the closing line names the worst element (issue #9), not the first one that fails
    assert "args[0][1, 1]: analytic 4 vs numeric 8" in report.problems()[0]


def test_the_random_directions_catch_what_sampling_misses() -> None:
    # one wrong element in 10,000; two sampled coordinates almost surely miss it
    x = rng.standard_normal(10_000)

    def g(x: np.ndarray) -> np.ndarray:
        out = 2 * x
        out[1234] += 1.0
        return out

    report = check_grads(lambda x: ops.sum(ops.square(x)), (x,), grad=g, samples=2, directions=3)
    assert not report.ok and all(not d.ok for d in report.directions)
    # halving the failing direction's support finds the element, and the report names it
    (bad,) = report.leaves[0].failures
    assert bad.index == (1234,) and report.leaves[0].detected == 1
    assert report.problems()[0].startswith("coordinates: args[0][1234]: analytic")


# ------------------------------------------------------------------- kinks, round-off, zeros


def test_relu_at_zero_is_a_kink_not_a_failure() -> None:
    report = check_grads(lambda x: ops.sum(ops.relu(x)), (np.array([-1.0, 0.0, 2.0]),), full=True)
    leaf = report.leaves[0]
    assert report.ok and leaf.n_failures == 0 and leaf.n_kinks == 1
    (kink,) = leaf.kinks
    assert kink.index == (1,) and kink.analytic == 0.0 and kink.between  # relu_grad: 0 at 0
    assert kink.left == pytest.approx(0.0, abs=1e-6) and kink.right == pytest.approx(1.0, rel=1e-6)


def test_maximum_with_a_tie_is_a_kink_with_half_the_gradient() -> None:
    x, y = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    report = check_grads(lambda x, y: ops.sum(ops.maximum(x, y)), (x, y), full=True)
    assert report.ok
    for leaf in report.leaves:
        assert leaf.n_kinks == 1 and leaf.kinks[0].index == (0,) and leaf.kinks[0].analytic == 0.5


def test_a_value_outside_the_one_sided_range_at_a_kink_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ops.relu.vjps, 0, lambda g, ans, x: ops.mul(g, 2.0))
    report = check_grads(lambda x: ops.sum(ops.relu(x)), (np.array([0.0]),), full=True)
    (bad,) = report.leaves[0].failures  # not a subgradient: a failure, shown at its kink
    assert bad.analytic == 2.0 and not bad.between and report.leaves[0].n_kinks == 0
    assert "at a kink, outside the one-sided derivatives [0, 1" in report.problems()[0]
    assert check_grads(lambda x: ops.sum(ops.relu(x)), (np.array([1.0]),)).ok is False


def test_a_kink_near_the_point_passes_with_a_smaller_step() -> None:
    # relu(x - 1e-7) at x = 0 has its kink 1e-7 away: inside h = 6e-6, outside h/100
    report = check_grads(lambda x: ops.sum(ops.relu(x - 1e-7)), (np.array([0.0]),), full=True)
    assert report.ok and report.leaves[0].n_kinks == 0


def test_round_off_of_a_large_offset_is_allowed_for() -> None:
    # f = 1e6 + sum(x): d f / d x = 1 exactly, but f(t +- h) carry ~1e-10 of rounding each
    report = check_grads(lambda x: 1e6 + ops.sum(x), (np.array([0.5, -0.25]),), full=True)
    assert report.ok
    assert report.leaves[0].worst is not None and report.leaves[0].worst.analytic == 1.0


def test_float32_inputs_are_promoted_with_a_warning() -> None:
    with pytest.warns(PrecisionWarning, match=r"args\[0\] \(float32\) promoted to float64"):
        report = check_grads(lambda x: ops.sum(ops.square(x)), (np.ones(3, np.float32),))
    assert report.ok and report.leaves[0].dtype == "float32"


def test_zero_gradient_has_zero_errors() -> None:
    report = check_grads(lambda x: ops.sum(x * 0.0) + 3.0, (np.ones(4),), full=True)
    leaf = report.leaves[0]
    assert report.ok and leaf.max_abs_error == 0.0 and leaf.max_rel_error == 0.0


def test_tiny_versus_zero_has_relative_error_one_not_infinity() -> None:
    def tiny(x: np.ndarray) -> np.ndarray:
        return np.full(2, 1e-30)

    report = check_grads(lambda x: ops.sum(x * 0.0), (np.ones(2),), grad=tiny, full=True)
    assert report.leaves[0].max_rel_error == 1.0


# ------------------------------------------------------------------- structure


def test_structural_checks_pass_for_the_tape() -> None:
    report = check_grads(lambda x: ops.sum(ops.exp(x)), (X34,))
    assert [s.name for s in report.structural] == [
        "f is computed in float64",
        "gradients have the inputs' shapes and dtypes",
        "value and gradients are finite",
        "backward twice gives the same gradient",
        "a zero cotangent gives zero gradients",
        "pullback is linear in the cotangent",
    ]
    assert all(s.ok for s in report.structural)


@pytest.mark.parametrize(
    ("g", "failing"),
    [
        (lambda x: (2 * x).astype(np.float32), "gradients have the inputs' shapes and dtypes"),
        (lambda x: 2 * x + np.nan, "value and gradients are finite"),
        (
            lambda x: 2 * x + np.random.default_rng().standard_normal(x.shape),
            "gradient is the same when computed twice",
        ),
    ],
)
def test_structural_failures_of_a_hand_written_gradient(g: Any, failing: str) -> None:
    report = check_grads(lambda x: ops.sum(ops.square(x)), (np.ones(3),), grad=g)
    assert [s.name for s in report.structural if not s.ok] == [failing]
    assert not report.ok


def test_non_scalar_function_is_a_user_code_error() -> None:
    with pytest.raises(UserCodeError, match="scalar"):
        check_grads(lambda x: ops.square(x), (np.ones(3),))


def test_report_json_round_trips() -> None:
    import json

    report = check_grads(lambda x: ops.sum(ops.relu(x)), (np.array([0.0, 1.0]),), full=True)
    data = json.loads(report.to_json())
    assert data["ok"] is True and data["leaves"][0]["n_kinks"] == 1 and data["problems"] == []


# ------------------------------------------------------------------- the tape as a library


def test_custom_vjp_is_checked() -> None:
    good = custom_vjp(np.tanh, lambda g, ans, x: g * (1 - ans * ans))
    bad = custom_vjp(np.tanh, lambda g, ans, x: g * (1 - ans))
    assert check_grads(lambda x: ops.sum(good(x)), (X34,)).ok
    assert not check_grads(lambda x: ops.sum(bad(x)), (X34,)).ok


SECOND_ORDER = {
    "sin": (lambda x: ops.sum(ops.sin(x)), lambda: rng.standard_normal(5)),
    "exp": (lambda x: ops.sum(ops.exp(x)), lambda: rng.standard_normal(5)),
    "log": (lambda x: ops.sum(ops.log(x)), lambda: rng.uniform(0.5, 2.0, 5)),
    "mul": (lambda x: ops.sum(x * x * ops.sin(x)), lambda: rng.standard_normal(5)),
    "matmul": (
        lambda x: ops.sum(ops.square(ops.matmul(x, np.arange(12.0).reshape(4, 3) / 10))),
        lambda: X34.copy(),
    ),
    "mean": (lambda x: ops.mean(ops.square(x) * x), lambda: rng.standard_normal(5)),
    "relu": (lambda x: ops.sum(ops.relu(x) * x * x), lambda: np.array([-1.5, -0.5, 0.7, 1.3])),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_grad_of_grad_matches_differences_of_the_first_derivative(name: str) -> None:
    f, make = SECOND_ORDER[name]
    x = make()
    v = np.random.default_rng(1).standard_normal(x.shape)
    # d/dx <grad f(x), v> = H v: the tape's second derivative, checked against the
    # central differences of the tape's first derivative
    report = check_grads(lambda x: ops.sum(grad(f)(x) * v), (x,), full=True)
    assert report.ok, report.problems()
    h = 1e-5
    fd = (grad(f)(x + h * v) - grad(f)(x - h * v)) / (2 * h)
    np.testing.assert_allclose(hvp(f)(x, v), fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------- saved values


def test_mutating_an_input_between_forward_and_backward_raises() -> None:
    x = np.array([1.0, 2.0, 3.0])
    _, pullback = autodiff.vjp(lambda x: ops.sum(ops.square(x)), x)
    with pytest.raises(ValueError, match="read-only"):
        x[0] = 10.0
    np.testing.assert_array_equal(pullback(1.0)[0], [2.0, 4.0, 6.0])  # the derivative at x
    del pullback
    x[0] = 10.0  # writable again once the tape is gone


def test_a_constant_saved_by_the_tape_is_protected_too() -> None:
    w = np.array([1.0, 2.0])
    _, pullback = autodiff.vjp(lambda x: ops.sum(ops.mul(x, w)), np.ones(2))
    with pytest.raises(ValueError, match="read-only"):
        w *= 2
    np.testing.assert_array_equal(pullback(1.0)[0], [1.0, 2.0])


def test_no_warning_for_float64_inputs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_grads(lambda x: ops.sum(ops.square(x)), (np.ones(3),)).ok


# ------------------------------------------------------------------- the review's cases


def _square_without_the_2() -> Any:
    return custom_vjp(np.square, lambda g, ans, x: ops.mul(g, x))


def test_a_large_offset_does_not_let_a_wrong_rule_through() -> None:
    sqw = _square_without_the_2()
    x = rng.standard_normal(2000)
    report = check_grads(lambda v: ops.add(ops.mean(sqw(v)), 1000.0), (x,))
    assert not report.ok  # the retries at h/10, h/100 must not loosen the tolerance


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_near_an_optimum_a_zero_or_half_gradient_fails(scale: float) -> None:
    c = rng.standard_normal(50)
    w = c + 1e-3 * rng.standard_normal(50)  # f ~ 6e4, |grad| ~ 2e-3

    def f(w: Any) -> Any:
        return ops.add(ops.sum(ops.square(ops.sub(w, c))), 6e4)

    assert check_grads(f, (w,)).ok
    assert not check_grads(f, (w,), grad=lambda w: scale * 2 * (w - c)).ok


def test_a_function_computed_in_float32_fails_the_precision_check() -> None:
    def f(w: Any) -> Any:
        return np.float32(1000) + np.sum(np.square(w.astype(np.float32)))

    report = check_grads(f, (rng.standard_normal(5),), grad=lambda w: 2 * w)
    failed = [s.name for s in report.structural if not s.ok]
    assert failed == ["f is computed in float64"] and not report.ok


def test_overflow_at_the_given_float32_shows() -> None:
    naive = custom_vjp(lambda x: np.log(np.sum(np.exp(x))), lambda g, ans, x: g * np.exp(x - ans))
    with pytest.warns(PrecisionWarning):
        report = check_grads(naive, (np.array([100.0, 101.0, 99.0], np.float32),))
    failed = [s.name for s in report.structural if not s.ok]
    assert failed == ["value and gradients are finite at the inputs' own dtypes"]


@pytest.mark.parametrize("bad", [None, "abc"])
def test_a_function_returning_a_non_number_is_a_user_code_error(bad: Any) -> None:
    with pytest.raises(UserCodeError, match="real scalar"):
        check_grads(lambda x: bad, (np.ones(2),))
    with pytest.raises(UserCodeError, match="where a gradient array belongs"):
        check_grads(lambda x: ops.sum(x), (np.ones(2),), grad=lambda x: bad)


def test_dict_gradients_match_by_key_not_by_order() -> None:
    args = ({"a": np.ones(2), "b": np.full(3, 2.0)},)

    def f(d: Any) -> Any:
        return ops.sum(ops.square(d["a"])) + ops.sum(d["b"])

    reordered = check_grads(f, args, grad=lambda d: {"b": np.ones(3), "a": 2 * d["a"]})
    assert reordered.ok
    wrong_keys = check_grads(f, args, grad=lambda d: {"c": np.ones(3), "a": 2 * d["a"]})
    assert not wrong_keys.ok
    assert [s.name for s in wrong_keys.structural] == ["gradient has the arguments' structure"]


def test_a_step_that_leaves_the_domain_is_shrunk() -> None:
    assert check_grads(lambda v: ops.sum(ops.log(v)), (np.array([1e-6, 2e-6]),), full=True).ok


def test_one_large_argument_does_not_spoil_the_directions() -> None:
    report = check_grads(
        lambda a, b: ops.sum(ops.sin(a)) + ops.sum(b), (rng.standard_normal(3), np.full(4, 1e6))
    )
    assert report.ok, report.problems()


def test_a_function_that_keeps_its_output_leaves_the_inputs_writable() -> None:
    kept = []

    def f(x: Any) -> Any:
        out = ops.sum(ops.square(x))
        kept.append(out)
        return out

    x = rng.standard_normal(4)
    assert check_grads(f, (x,)).ok
    x[0] = 1.0  # check_grads worked on copies: the caller's array was never frozen


def test_mutating_the_output_between_forward_and_backward_raises() -> None:
    out, _pullback = autodiff.vjp(ops.exp, np.ones(2))
    with pytest.raises(ValueError, match="read-only"):
        out[0] = 0.0


def test_dataclasses_that_validate_or_have_init_false_fields() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Checked:
        w: np.ndarray
        size: int = dataclasses.field(init=False, default=0)

        def __post_init__(self) -> None:
            if self.w.ndim != 1:
                raise ValueError("w must be 1-D")

    report = check_grads(lambda p: ops.sum(ops.square(p.w)), (Checked(np.ones(3)),))
    assert report.ok and [leaf.name for leaf in report.leaves] == ["args[0].w", "args[0].size"]


@pytest.mark.parametrize(
    ("leaf", "word"), [("text", "str"), (np.array([True]), "bool"), (np.array([1j]), "complex")]
)
def test_unsupported_leaves_get_a_clear_message(leaf: Any, word: str) -> None:
    with pytest.raises(ConfigError, match=f"is {word}.*real float arrays and numbers"):
        check_grads(lambda x: 0.0, (leaf,))


def test_float16_is_promoted_with_a_warning_too() -> None:
    with pytest.warns(PrecisionWarning, match="float16"):
        check_grads(lambda x: ops.sum(ops.square(x)), (np.ones(3, np.float16),))


@pytest.mark.parametrize(
    ("option", "value"), [("samples", 0), ("directions", -1), ("seed", -1), ("step", 2.0)]
)
def test_unusable_options_name_the_parameter(option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"^{option} must be") as e:
        check_grads(lambda v: ops.sum(v * v), (np.ones(3),), **{option: value})
    assert e.value.param == option and "--" not in str(e.value)


def test_a_smooth_function_at_a_zero_gradient_has_no_kinks() -> None:
    """sum(x * x) at x = 0: the gradient is 0, so the kink finder's tolerance (rtol times
    the largest gradient) was 0 and every smooth change across its 1e-9 step passed it:
    299,952 'coordinates at kinks not judged' (a helper's report on #13). A kink's jump
    stays as the step shrinks; this change shrinks with it. relu at 0 keeps its kinks."""
    zeros = np.zeros((30, 100))
    smooth = check_grads(lambda x: ops.sum(x * x), [zeros])
    (leaf,) = smooth.leaves
    assert smooth.ok and (leaf.n_kinks, leaf.detected, leaf.unjudged) == (0, 0, 0)
    kinked = check_grads(lambda x: ops.sum(ops.relu(x)), [zeros])
    (leaf,) = kinked.leaves
    assert kinked.ok and leaf.n_kinks >= MAX_KINKS + 1  # the largest jumps, and samples
    # every one found, and each counted once (the sampled ones were counted twice too: 2,068
    # judged and 297,952 not judged of 300,000)
    assert leaf.n_kinks + leaf.unjudged == zeros.size
