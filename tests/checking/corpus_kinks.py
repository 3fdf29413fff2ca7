"""The corpus's functions with kinks and ties: valid conventions there, and wrong rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops
from tests.checking.corpus_case import Case, Grad, rng


def minimum(a: Any, b: Any) -> Any:
    return -ops.maximum(-a, -b)


def relu_grad(z: np.ndarray, at_zero: float) -> np.ndarray:
    """relu'(z) with the value `at_zero` at exactly 0 (0, 1, 1/2: valid; others wrong)."""
    return (z > 0) + at_zero * (z == 0)


def conventions(make: Callable[[float], Grad], valid: list[float], wrong: list[float]) -> Any:
    """The valid and wrong rules of a function whose kink rule is one number."""
    return (
        {f"kink rule {v:g}": make(v) for v in valid},
        {f"kink rule {w:g} (no subgradient)": make(w) for w in wrong},
    )


def relu_net() -> Case:
    """A 3-6-1 ReLU net on generic data: no input at a kink."""
    r = rng(22)
    w1, b1, w2, x, y = (r.standard_normal(s) for s in ((3, 6), (6,), (6,), (9, 3), (9,)))

    def f(w1: Any, b1: Any, w2: Any, x: Any) -> Any:
        h = ops.relu(ops.matmul(x, w1) + b1)
        return ops.mean(ops.square(ops.matmul(h, w2) - y))

    def g(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, x: np.ndarray, k: float = 2.0) -> Any:
        z = x @ w1 + b1
        h = np.maximum(z, 0)
        d = k * (h @ w2 - y) / y.size
        dz = np.outer(d, w2) * (z > 0)
        return x.T @ dz, dz.sum(0), h.T @ d, dz @ w1.T

    def relu_flipped(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, x: np.ndarray) -> Any:
        z = x @ w1 + b1
        h = np.maximum(z, 0)
        d = 2 * (h @ w2 - y) / y.size
        dz = np.outer(d, w2) * (z < 0)
        return x.T @ dz, dz.sum(0), h.T @ d, dz @ w1.T

    return Case(
        "relu net",
        f,
        (w1, b1, w2, x),
        g,
        {"dropped factor 2": lambda *a: g(*a, k=1.0), "relu mask inverted": relu_flipped},
    )


def _zero_row_net(seed: int, n_in: int, n_hidden: int, rows: int) -> Any:
    r = rng(seed)
    x = r.standard_normal((rows, n_in))
    x[0] = 0.0
    y = r.standard_normal(rows)
    return (
        r.standard_normal((n_in, n_hidden)),
        np.zeros(n_hidden),
        r.standard_normal(n_hidden),
        x,
        y,
    )


def relu_net_zero_row() -> Case:
    """Zero bias and an all-zero input row: every hidden unit of row 0 at exactly 0, so
    each x[0, i] and b1[j] crosses ReLU kinks at the point (x[0, i] eight at once)."""
    w1, b1, w2, x, y = _zero_row_net(23, 5, 8, 6)

    def f(w1: Any, b1: Any, w2: Any, x: Any) -> Any:
        h = ops.relu(ops.matmul(x, w1) + b1)
        return ops.mean(ops.square(ops.matmul(h, w2) - y))

    def make(at_zero: float) -> Grad:
        def g(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, x: np.ndarray) -> Any:
            z = x @ w1 + b1
            h = np.maximum(z, 0)
            d = 2 * (h @ w2 - y) / y.size
            dz = np.outer(d, w2) * relu_grad(z, at_zero)
            return x.T @ dz, dz.sum(0), h.T @ d, dz @ w1.T

        return g

    valid, wrong = conventions(make, [1.0, 0.5], [5.0, -1.0, 2.0])
    return Case("relu net, zero row", f, (w1, b1, w2, x), make(0.0), wrong, valid)


def two_relu_layers(y: np.ndarray) -> tuple[Callable[..., Any], Callable[[float], Grad]]:
    """mean((relu(relu(x w1 + b1) w2 + b2) w3 - y)^2) of (w1, b1, w2, b2, w3, x), and its
    gradient by hand with relu'(0) = `at_zero`."""

    def f(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, x: Any) -> Any:
        h1 = ops.relu(ops.matmul(x, w1) + b1)
        h2 = ops.relu(ops.matmul(h1, w2) + b2)
        return ops.mean(ops.square(ops.matmul(h2, w3) - y))

    def make(at_zero: float) -> Grad:
        def g(*a: np.ndarray) -> Any:
            w1, b1, w2, b2, w3, x = a
            z1 = x @ w1 + b1
            h1 = np.maximum(z1, 0)
            z2 = h1 @ w2 + b2
            h2 = np.maximum(z2, 0)
            d = 2 * (h2 @ w3 - y) / y.size
            dz2 = np.outer(d, w3) * relu_grad(z2, at_zero)
            dz1 = dz2 @ w2.T * relu_grad(z1, at_zero)
            return x.T @ dz1, dz1.sum(0), h1.T @ dz2, dz2.sum(0), h2.T @ d, dz1 @ w1.T

        return g

    return f, make


def relu_deep_zero_row() -> Case:
    """Two hidden layers, zero biases, a row of zeros: kinks through kinks."""
    r = rng(24)
    w1, w2, w3 = r.standard_normal((4, 5)), r.standard_normal((5, 5)), r.standard_normal(5)
    b1, b2 = np.zeros(5), np.zeros(5)
    x = r.standard_normal((5, 4))
    x[0] = 0.0
    f, make = two_relu_layers(r.standard_normal(5))

    valid, wrong = conventions(make, [1.0], [5.0, -1.0])
    return Case("deep relu net, zero row", f, (w1, b1, w2, b2, w3, x), make(0.0), wrong, valid)


def relu_sum() -> Case:
    r = rng(25)
    x, w = r.standard_normal(12), r.standard_normal(12)
    x[[1, 4, 9]] = 0.0

    def make(at_zero: float) -> Grad:
        return lambda x, w: (w * relu_grad(x, at_zero), np.maximum(x, 0))

    valid, wrong = conventions(make, [1.0, 0.5, 0.25], [2.0, -0.5])
    return Case(
        "sum w relu(x), zeros in x",
        lambda x, w: ops.sum(ops.relu(x) * w),
        (x, w),
        make(0.0),
        wrong,
        valid,
    )


def ties(shares: tuple[float, float]) -> Grad:
    def g(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
        tie = x == y
        return c * ((x > y) + shares[0] * tie), c * ((y > x) + shares[1] * tie), np.maximum(x, y)

    return g


def maximum_ties() -> Case:
    r = rng(26)
    x, y, c = r.standard_normal(10), r.standard_normal(10), r.uniform(0.5, 2.0, 10)
    y[[0, 3, 7]] = x[[0, 3, 7]]
    return Case(
        "sum c maximum(x, y), ties",
        lambda x, y, c: ops.sum(ops.maximum(x, y) * c),
        (x, y, c),
        ties((0.5, 0.5)),
        {"ties: 1 to both": ties((1.0, 1.0)), "ties: 0 to both": ties((0.0, 0.0))},
        {"ties: to x": ties((1.0, 0.0)), "ties: to y": ties((0.0, 1.0))},
    )


E3 = np.eye(3)


def rowmax_grad(rule: str) -> Grad:
    def g(xm: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
        top = xm == xm.max(1, keepdims=True)
        if rule == "even":
            share = top / top.sum(1, keepdims=True)
        elif rule in ("first", "last"):
            pick = top.argmax(1) if rule == "first" else 2 - top[:, ::-1].argmax(1)
            share = E3[pick]
        else:  # "all": every tied element gets the whole cotangent
            share = top * 1.0
        return (c[:, None] * share, xm.max(1))

    return g


def rowmax() -> Case:
    r = rng(27)
    xm, c = r.standard_normal((6, 3)), r.uniform(0.5, 2.0, 6)
    xm[1, 2] = xm[1, 0] = xm[1].max() + 0.5
    xm[4] = 1.25  # a three-way tie

    def f(xm: Any, c: Any) -> Any:
        cols = [ops.matmul(xm, E3[j]) for j in range(3)]
        return ops.sum(ops.maximum(ops.maximum(cols[0], cols[1]), cols[2]) * c)

    return Case(
        "sum c max over each row, ties",
        f,
        (xm, c),
        rowmax_grad("even"),
        {"ties: 1 to every tied element": rowmax_grad("all")},
        {"ties: the first": rowmax_grad("first"), "ties: the last": rowmax_grad("last")},
    )


def l1() -> Case:
    r = rng(28)
    x, w = r.standard_normal(10), r.uniform(0.5, 2.0, 10)
    x[[2, 5]] = 0.0

    def make(at_zero: float) -> Grad:
        return lambda x, w: (w * np.where(x == 0, at_zero, np.sign(x)), np.abs(x))

    valid, wrong = conventions(make, [1.0, -1.0, 0.3], [2.0, -1.5])
    return Case(
        "sum w |x|, zeros in x",
        lambda x, w: ops.sum((ops.relu(x) + ops.relu(-x)) * w),
        (x, w),
        make(0.0),
        wrong,
        valid,
    )


def hinge() -> Case:
    r = rng(29)
    t = np.where(r.standard_normal(8) > 0, 1.0, -1.0)
    w = np.array([1.0, 0.5, -0.25])
    x = r.standard_normal((8, 3))
    x[[1, 4], :] = 0.0
    x[[1, 4], 0] = t[[1, 4]]  # margin exactly 1: t (x . w) = 1

    def f(w: Any, x: Any) -> Any:
        return ops.mean(ops.relu(1.0 - t * ops.matmul(x, w)))

    def make(at_zero: float) -> Grad:
        def g(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
            dz = -t * relu_grad(1 - t * (x @ w), at_zero) / t.size
            return x.T @ dz, np.outer(dz, w)

        return g

    valid, wrong = conventions(make, [1.0, 0.5], [2.0, -1.0])
    return Case("hinge loss, margins at 1", f, (w, x), make(0.0), wrong, valid)


def leaky() -> Case:
    r = rng(30)
    x, w = r.standard_normal(9), r.uniform(0.5, 2.0, 9)
    x[[0, 6]] = 0.0

    def make(at_zero: float) -> Grad:
        return lambda x, w: (
            w * np.where(x > 0, 1.0, np.where(x < 0, 0.1, at_zero)),
            np.maximum(x, 0.1 * x),
        )

    valid, wrong = conventions(make, [0.1, 0.55], [0.0, 2.0])
    return Case(
        "sum w leaky_relu(x), zeros in x",
        lambda x, w: ops.sum(ops.maximum(x, 0.1 * x) * w),
        (x, w),
        make(1.0),
        wrong,
        valid,
    )


def lasso() -> Case:
    r = rng(31)
    w, x, y = r.standard_normal(5), r.standard_normal((10, 5)), r.standard_normal(10)
    w[[1, 3]] = 0.0

    def f(w: Any, x: Any) -> Any:
        fit = ops.mean(ops.square(ops.matmul(x, w) - y))
        return fit + 0.05 * ops.sum(ops.relu(w) + ops.relu(-w))

    def make(at_zero: float) -> Grad:
        def g(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
            res = 2 * (x @ w - y) / y.size
            sub = np.where(w == 0, at_zero, np.sign(w))
            return x.T @ res + 0.05 * sub, np.outer(res, w)

        return g

    valid, wrong = conventions(make, [1.0, -1.0], [3.0])
    return Case("lasso, zero weights", f, (w, x), make(0.0), wrong, valid)


def clip() -> Case:
    r = rng(32)
    x, w = r.uniform(-2, 2, 10), r.uniform(0.5, 2.0, 10)
    x[[1, 2]], x[[5]] = 1.0, -1.0

    def make(at_edge: float) -> Grad:
        def g(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
            inside = (np.abs(x) < 1) + at_edge * (np.abs(x) == 1)
            return w * inside, np.clip(x, -1, 1)

        return g

    valid, wrong = conventions(make, [1.0, 0.5], [2.0, -1.0])
    return Case(
        "sum w clip(x, -1, 1), values at the edges",
        lambda x, w: ops.sum(minimum(ops.maximum(x, -1.0), 1.0) * w),
        (x, w),
        make(0.0),
        wrong,
        valid,
    )


SHIFT = np.eye(6)[:, :5], np.eye(6)[:, 1:]  # x @ S0 = x[:-1], x @ S1 = x[1:]


def maxpool() -> Case:
    x = np.array([0.5, 0.5, -1.0, 2.0, 2.0, 0.25])  # equal neighbours: ties
    c = rng(33).uniform(0.5, 2.0, 5)

    def make(shares: tuple[float, float]) -> Grad:
        def g(x: np.ndarray) -> tuple[np.ndarray]:
            a, b = x[:-1], x[1:]
            tie = a == b
            out = np.zeros(6)
            out[:-1] += c * ((a > b) + shares[0] * tie)
            out[1:] += c * ((b > a) + shares[1] * tie)
            return (out,)

        return g

    return Case(
        "max-pool of neighbours, ties",
        lambda x: ops.sum(ops.maximum(ops.matmul(x, SHIFT[0]), ops.matmul(x, SHIFT[1])) * c),
        (x,),
        make((0.5, 0.5)),
        {"ties: 1 to both": make((1.0, 1.0))},
        {"ties: to the left": make((1.0, 0.0)), "ties: to the right": make((0.0, 1.0))},
        stale=False,  # piecewise constant: 1% away, the ties are broken, a valid convention
    )


KINKS = [
    relu_net(),
    relu_net_zero_row(),
    relu_deep_zero_row(),
    relu_sum(),
    maximum_ties(),
    rowmax(),
    l1(),
    hinge(),
    leaky(),
    lasso(),
    clip(),
    maxpool(),
]
