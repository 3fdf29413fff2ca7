"""The lesson's data and net sections: normalization, n m c, init statistics, the initial
MSE, and the three strategies' gradients compared (testSame first)."""

from __future__ import annotations

import math

import numpy as np

from fcgrad import strategies
from fcgrad.checking.net_gradcheck import (
    CROSS_ATOL_SCALE,
    CROSS_RTOL,
    check_test_same,
    cross_compare,
)
from fcgrad.data.normalize import NormalizeReport
from fcgrad.lesson.report import Check, Section, equal, near, small
from fcgrad.nn import losses
from fcgrad.nn.init import init_params
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Net, forward
from fcgrad.nn.params import Params
from fcgrad.strategies import LossAndGrads

HIDDEN = 50  # the lesson's 784-50-1 net
REFERENCE = "manual"  # the strategy the others are compared with
# What the init statistics should be for inputs of mean 0 and variance 1 (z ~ N(0, s^2)):
# relu(z) has mean s / sqrt(2 pi) and std s sqrt(1/2 - 1/(2 pi)); s is 1 for the naive
# 1/sqrt(m) init and sqrt(2) for kaiming's sqrt(2/m).
INIT_TOL = 0.15  # one draw of a 784x50 matrix moves them by up to about 0.1
MSE_RTOL = 1e-5  # the strategies' losses against the numpy forward pass


def _relu_moments(s: float) -> tuple[float, float]:
    return s / math.sqrt(2 * math.pi), s * math.sqrt(0.5 - 0.5 / math.pi)


def normalization(report: NormalizeReport) -> Section:
    """The training and valid statistics before and after, and the lesson's two checks."""
    rows: list[tuple[str, ...]] = [
        (name, f"{b.mean:.5f}", f"{b.std:.5f}", f"{a.mean:.4f}", f"{a.std:.4f}")
        for name, b, a in (
            ("train", report.train_before, report.train_after),
            ("valid", report.valid_before, report.valid_after),
        )
    ]
    checks = [
        small("train mean after", report.train_after.mean, report.checks[0].tol),
        near("train std after", report.train_after.std, 1.0, report.checks[1].tol),
    ]
    return Section(
        "normalization",
        "Normalization with the training mean and std",
        checks,
        ("set", "mean before", "std before", "mean after", "std after"),
        rows,
        [
            "the lesson: train 0.13066 and 0.30811; valid after about 0.0060 and 1.0077",
        ],
        {k: v for k, v in report.to_dict().items() if k != "checks"},
    )


def sizes(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray) -> Section:
    """n (training rows), m (pixels per image) and c (classes), and the shapes they give."""
    n, m = (int(d) for d in x_train.shape)
    c = int(y_train.max()) + 1 if y_train.size else 0
    checks = [
        equal("x_train shape", tuple(x_train.shape), (n, m)),
        equal("y_train rows", int(y_train.shape[0]), n),
        equal("x_valid columns", int(x_valid.shape[1]), m),
        equal("c (classes)", c, 10),
    ]
    notes = [f"n = {n:,} training rows, m = {m} pixels, c = {c} digits"]
    return Section("sizes", "n, m, c", checks, notes=notes, data={"n": n, "m": m, "c": c})


INITS = (("naive", 1.0), ("kaiming", math.sqrt(2.0)))  # init, gain: w1 std is gain / sqrt(m)


def init_activations(x_valid: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each init of INITS: (x_valid @ w1, relu of it), b1 = 0, both (N, 50) float32, for
    one draw z = randn(m, 50) scaled by 1/sqrt(m) (naive) and by sqrt(2/m) (kaiming, what
    `init_params` draws for seed)."""
    m = x_valid.shape[1]
    z = np.random.default_rng(seed).standard_normal((m, HIDDEN))
    out = {}
    for init, scale in INITS:
        lin = x_valid @ (z * (scale / math.sqrt(m))).astype(np.float32)
        out[init] = (lin, np.maximum(lin, 0))
    return out


def init_stats(x_valid: np.ndarray, seed: int) -> Section:
    """The mean and std of `init_activations`, against the moments for unit inputs."""
    m = x_valid.shape[1]
    acts = init_activations(x_valid, seed)
    checks: list[Check] = []
    data: dict[str, object] = {}
    for init, scale in INITS:
        lin, relu = acts[init]
        relu_mean, relu_std = _relu_moments(scale)
        found = {
            "lin": (float(lin.mean()), float(lin.std())),
            "relu": (float(relu.mean()), float(relu.std())),
        }
        expect = {"lin": (0.0, scale), "relu": (relu_mean, relu_std)}
        for stage in ("lin", "relu"):
            (mean, std), (e_mean, e_std) = found[stage], expect[stage]
            checks.append(near(f"{init} {stage} mean", mean, e_mean, INIT_TOL, digits=3))
            checks.append(near(f"{init} {stage} std", std, e_std, INIT_TOL, digits=3))
        data[init] = {
            "w1_std": scale / math.sqrt(m),
            **{
                f"{st}_{k}": v for st, (a, b) in found.items() for k, v in (("mean", a), ("std", b))
            },
            **{
                f"expected_{st}_{k}": v
                for st, (a, b) in expect.items()
                for k, v in (("mean", a), ("std", b))
            },
        }
    notes = [
        "w1 = randn(m, 50) * scale, b1 = 0, on x_valid; naive scale 1/sqrt(m),",
        "kaiming sqrt(2/m): relu halves the variance and kaiming's 2 gives it back",
        "(expected: the moments for inputs of mean 0 and std 1)",
    ]
    return Section(
        "init", "Init statistics, after lin and after relu", checks, notes=notes, data=data
    )


def lesson_net() -> Net:
    """The lesson's net: 784-50-1 relu with the MSE on the digit."""
    return Net.mlp((784, HIDDEN, 1), Loss.mse)


def initial_mse(x_valid: np.ndarray, y_valid: np.ndarray, params: Params) -> Section:
    """The MSE of the freshly initialized net on the valid set: numpy's forward pass and
    each strategy's own, which must agree."""
    net = lesson_net()
    y = losses.targets(Loss.mse, y_valid)
    ref = losses.value(Loss.mse, forward(net, params, x_valid), y)
    zero = float(np.mean(np.square(y.astype(np.float64))))
    checks = [Check("mse is finite", f"{ref:.4f}", "finite", math.isfinite(ref))]
    found = {}
    for name in strategies.NAMES:
        v = strategies.get(name).value(net, params, x_valid, y)
        found[name] = v
        ok = math.isfinite(v) and abs(v - ref) <= MSE_RTOL * abs(ref)
        checks.append(Check(f"{name} value", f"{v:.4f}", f"= {ref:.4f} (rel {MSE_RTOL:g})", ok))
    notes = [f"{net.describe()}, kaiming init; an output of 0 would cost mean(y^2) = {zero:.2f}"]
    data = {"mse": ref, "zero_prediction_mse": zero, "strategies": found}
    return Section(
        "initial_mse", "The initial MSE on the valid set", checks, notes=notes, data=data
    )


def _test_same(name: str, g: LossAndGrads, params: Params, x: np.ndarray) -> Check:
    """The lesson's testSame (gradcheck's `check_test_same`): every gradient, the input's
    included, has its input's shape and dtype; a failure shows the first that differs."""
    row = check_test_same(name, g, params, x)
    value = f"{row.checked} of {row.checked}" if row.passed else f"{row.parameter}: {row.note}"
    return Check(f"testSame {name}", value, "shapes, dtypes", row.passed)


def gradients(x: np.ndarray, labels: np.ndarray, params: Params) -> Section:
    """Each strategy's gradients of the lesson's net on (x, labels), input included: testSame,
    then every array against the reference strategy's (float32 tolerance of gradcheck)."""
    net = lesson_net()
    y = losses.targets(Loss.mse, labels)
    ref = strategies.get(REFERENCE).value_and_grads(net, params, x, y, input_grad=True)
    checks = [_test_same(REFERENCE, ref, params, x)]
    compared: dict[str, dict[str, float]] = {}
    for name in strategies.NAMES:
        if name == REFERENCE:
            continue
        g = strategies.get(name).value_and_grads(net, params, x, y, input_grad=True)
        checks.append(_test_same(name, g, params, x))
        errors = {}
        for array, r in ref.named().items():
            a = g.named().get(array)
            if a is None:
                checks.append(Check(f"{name} {array} = {REFERENCE}", "missing", "present", False))
                continue
            row = cross_compare(name, array, a, r, REFERENCE)
            errors[array] = row.max_abs_error
            shown = f"{row.max_abs_error:.2g}" if not row.note else row.note
            checks.append(
                Check(f"{name} {array} = {REFERENCE}", shown, "max err in tol", row.passed)
            )
        compared[name] = errors
        del g
    notes = [
        f"{net.describe()} on {x.shape[0]:,} training rows; the input's gradient included",
        f"tolerance: |a - r| <= {CROSS_ATOL_SCALE:g} max|r| + {CROSS_RTOL:g} |r|",
    ]
    data = {"rows": int(x.shape[0]), "reference": REFERENCE, "max_abs_error": compared}
    return Section("gradients", "The three strategies' gradients", checks, notes=notes, data=data)


def lesson_params(seed: int) -> Params:
    """The lesson net's parameters, kaiming init, from `seed`."""
    return init_params(lesson_net(), seed)
