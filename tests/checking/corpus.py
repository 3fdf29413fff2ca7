"""A corpus of functions with hand-written gradients, right and wrong, for testing the tester.

Each `Case` is a scalar function written with `fcgrad.engine.ops` (plain numpy on arrays), its
arguments (float64, seeded), its correct gradient by hand, the wrong rules people
write for it (a dropped factor, a transpose, a forgotten sum over the broadcast rows,
a tie rule whose shares sum to 2, a relu'(0) that is no subgradient), and, at kinks,
other correct gradients that choose another valid convention (relu'(0) = 0, 1 or
1/2; a tie to the first, the last, or split). `tests/checking/test_mutations.py`
adds the mistakes any gradient can have (a sign flip, a 1% error in one element, a
1e-3 relative error everywhere, a stale evaluation point, one argument's gradient
zeroed, a transposed square gradient) and checks `check_grads` at its defaults
against all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from fcgrad.engine import ops

Grad = Callable[..., tuple[np.ndarray, ...]]


@dataclasses.dataclass
class Case:
    name: str
    f: Callable[..., Any]
    args: tuple[np.ndarray, ...]
    grad: Grad
    wrong: dict[str, Grad] = dataclasses.field(default_factory=dict)
    valid: dict[str, Grad] = dataclasses.field(default_factory=dict)  # other conventions
    stale: bool = True  # False: the gradient at a nearby point is another valid convention


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + ops.exp(-z))


def tanh(z: Any) -> Any:
    return 1.0 - 2.0 / (ops.exp(2.0 * z) + 1.0)


def np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def sqrt(s: Any) -> Any:
    return ops.exp(0.5 * ops.log(s))


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


# ------------------------------------------------------------------- smooth functions


def sum_squares() -> Case:
    x = _rng(1).standard_normal(7)
    return Case(
        "sum of squares",
        lambda x: ops.sum(ops.square(x)),
        (x,),
        lambda x: (2 * x,),
        {"dropped factor 2": lambda x: (x,)},
    )


def linreg() -> Case:
    r = _rng(2)
    w, x, y = r.standard_normal(4), r.standard_normal((12, 4)), r.standard_normal(12)

    def f(w: Any, x: Any, y: Any) -> Any:
        return ops.mean(ops.square(ops.matmul(x, w) - y))

    def g(w: np.ndarray, x: np.ndarray, y: np.ndarray, k: float = 2.0) -> tuple[np.ndarray, ...]:
        res = x @ w - y
        return k * x.T @ res / y.size, k * np.outer(res, w) / y.size, -k * res / y.size

    return Case(
        "linear regression mse",
        f,
        (w, x, y),
        g,
        {
            "dropped factor 2": lambda w, x, y: g(w, x, y, 1.0),
            "sum instead of mean": lambda w, x, y: tuple(a * y.size for a in g(w, x, y)),
        },
    )


def linear_layer() -> Case:
    r = _rng(3)
    w, b, x, y = (r.standard_normal(s) for s in ((4, 4), (4,), (9, 4), (9, 4)))

    def f(w: Any, b: Any, x: Any, y: Any) -> Any:
        return ops.mean(ops.square(ops.matmul(x, w) + b - y))

    def parts(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 2 * (x @ w + b - y) / y.size

    def g(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        d = parts(w, b, x, y)
        return x.T @ d, d.sum(0), d @ w.T, -d

    def one_row(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> Any:
        d = parts(w, b, x, y)
        return x.T @ d, d[0], d @ w.T, -d

    def no_sum(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> Any:
        d = parts(w, b, x, y)
        return x.T @ d, d, d @ w.T, -d

    def dx_untransposed(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> Any:
        d = parts(w, b, x, y)
        return x.T @ d, d.sum(0), d @ w, -d

    return Case(
        "linear layer mse",
        f,
        (w, b, x, y),
        g,
        {
            "bias: one row, no sum over the batch": one_row,
            "bias: the broadcast sum missing (wrong shape)": no_sum,
            "input: w instead of w.T": dx_untransposed,
        },
    )


def logistic() -> Case:
    r = _rng(4)
    w, x = r.standard_normal(3), r.standard_normal((10, 3))
    t = np.where(r.standard_normal(10) > 0, 1.0, -1.0)

    def f(w: Any, x: Any) -> Any:
        return ops.mean(ops.log(1.0 + ops.exp(-t * ops.matmul(x, w))))

    def g(w: np.ndarray, x: np.ndarray, sign: float = -1.0) -> tuple[np.ndarray, ...]:
        dz = -t * np_sigmoid(sign * t * (x @ w)) / t.size
        return x.T @ dz, np.outer(dz, w)

    return Case("logistic loss", f, (w, x), g, {"sigmoid of +tz": lambda w, x: g(w, x, 1.0)})


def softmax_xent() -> Case:
    r = _rng(5)
    w, b, x = r.standard_normal((4, 4)), r.standard_normal(4), r.standard_normal((8, 4))
    onehot = np.eye(4)[r.integers(0, 4, 8)]

    def f(w: Any, b: Any, x: Any) -> Any:
        return -ops.sum(ops.log_softmax(ops.matmul(x, w) + b) * onehot) / 8.0

    def g(w: np.ndarray, b: np.ndarray, x: np.ndarray, minus: float = 1.0, n: float = 8.0) -> Any:
        z = x @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d = (p - minus * onehot) / n
        return x.T @ d, d.sum(0), d @ w.T

    return Case(
        "softmax cross-entropy",
        f,
        (w, b, x),
        g,
        {
            "forgot to subtract the one-hot": lambda w, b, x: g(w, b, x, 0.0),
            "no mean over rows": lambda w, b, x: g(w, b, x, 1.0, 1.0),
        },
    )


def tanh_layer() -> Case:
    r = _rng(6)
    w, x, c = r.standard_normal((3, 5)), r.standard_normal((6, 3)), r.standard_normal((6, 5))

    def f(w: Any, x: Any) -> Any:
        return ops.sum(tanh(ops.matmul(x, w)) * c)

    def g(w: np.ndarray, x: np.ndarray, square: bool = True) -> tuple[np.ndarray, ...]:
        th = np.tanh(x @ w)
        dz = c * (1 - (th * th if square else th))
        return x.T @ dz, dz @ w.T

    return Case(
        "tanh layer", f, (w, x), g, {"1 - tanh, not 1 - tanh^2": lambda w, x: g(w, x, False)}
    )


def sigmoid_bce() -> Case:
    r = _rng(7)
    w, x, t = r.standard_normal(3), r.standard_normal((10, 3)), (r.random(10) > 0.5) * 1.0

    def f(w: Any, x: Any) -> Any:
        p = sigmoid(ops.matmul(x, w))
        return -ops.mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))

    def g(w: np.ndarray, x: np.ndarray, sign: float = 1.0) -> tuple[np.ndarray, ...]:
        dz = sign * (np_sigmoid(x @ w) - t) / t.size
        return x.T @ dz, np.outer(dz, w)

    return Case("sigmoid cross-entropy", f, (w, x), g, {"t - p": lambda w, x: g(w, x, -1.0)})


def sincos() -> Case:
    r = _rng(8)
    x, y = r.standard_normal(6), r.standard_normal(6)
    return Case(
        "sin x cos y",
        lambda x, y: ops.sum(ops.sin(x) * ops.cos(y)),
        (x, y),
        lambda x, y: (np.cos(x) * np.cos(y), -np.sin(x) * np.sin(y)),
        {"cos' = sin": lambda x, y: (np.cos(x) * np.cos(y), np.sin(x) * np.sin(y))},
    )


def exp_weighted() -> Case:
    r = _rng(9)
    x, y = r.standard_normal(5), r.standard_normal(5)
    return Case(
        "exp x times y",
        lambda x, y: ops.sum(ops.exp(x) * y),
        (x, y),
        lambda x, y: (np.exp(x) * y, np.exp(x)),
        {"product rule: one term": lambda x, y: (np.exp(x), np.exp(x))},
    )


def logsumexp() -> Case:
    x = _rng(10).standard_normal(6)
    return Case(
        "log-sum-exp",
        lambda x: ops.log(ops.sum(ops.exp(x))),
        (x,),
        lambda x: (np.exp(x) / np.exp(x).sum(),),
        {"not normalized": lambda x: (np.exp(x),)},
    )


def matmul_square() -> Case:
    r = _rng(11)
    a, b = r.standard_normal((4, 4)), r.standard_normal((4, 4))

    def g(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        p = a @ b
        return p @ b.T, a.T @ p

    return Case(
        "half sum of (A B)^2",
        lambda a, b: 0.5 * ops.sum(ops.square(ops.matmul(a, b))),
        (a, b),
        g,
        {"B.T on the wrong side": lambda a, b: (b.T @ (a @ b), a.T @ (a @ b))},
    )


def quadratic_form() -> Case:
    r = _rng(12)
    a, x = r.standard_normal((4, 4)), r.standard_normal(4)
    return Case(
        "x . A x",
        lambda a, x: ops.sum(x * ops.matmul(a, x)),
        (a, x),
        lambda a, x: (np.outer(x, x), (a + a.T) @ x),
        {"2 A x, as if A were symmetric": lambda a, x: (np.outer(x, x), 2 * a @ x)},
    )


def mlp_tanh() -> Case:
    r = _rng(13)
    w1, b1, w2 = r.standard_normal((3, 5)), r.standard_normal(5), r.standard_normal(5)
    x, y = r.standard_normal((7, 3)), r.standard_normal(7)

    def f(w1: Any, b1: Any, w2: Any, x: Any) -> Any:
        h = tanh(ops.matmul(x, w1) + b1)
        return ops.mean(ops.square(ops.matmul(h, w2) - y))

    def g(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, x: np.ndarray, bsum: bool = True) -> Any:
        h = np.tanh(x @ w1 + b1)
        d = 2 * (h @ w2 - y) / y.size
        dz = np.outer(d, w2) * (1 - h * h)
        return x.T @ dz, dz.sum(0) if bsum else dz.mean(0), h.T @ d, dz @ w1.T

    return Case(
        "tanh MLP",
        f,
        (w1, b1, w2, x),
        g,
        {"bias: mean over the batch, not sum": lambda *a: g(*a, bsum=False)},
    )


def division() -> Case:
    r = _rng(14)
    x, y = r.standard_normal(5), r.uniform(0.5, 2.0, 5)
    return Case(
        "x / y",
        lambda x, y: ops.sum(x / y),
        (x, y),
        lambda x, y: (1 / y, -x / y**2),
        {"d/dy: -x / y": lambda x, y: (1 / y, -x / y)},
    )


def norm() -> Case:
    x = _rng(15).standard_normal(6)
    n = float(np.sqrt(x @ x))
    return Case(
        "euclidean norm",
        lambda x: sqrt(ops.sum(ops.square(x))),
        (x,),
        lambda x: (x / np.sqrt(x @ x),),
        {"forgot / norm": lambda x: (x,), "2 x / norm": lambda x: (2 * x / n,)},
    )


def cosine() -> Case:
    r = _rng(16)
    u, v = r.standard_normal(5), r.standard_normal(5)

    def f(u: Any, v: Any) -> Any:
        return ops.sum(u * v) / (sqrt(ops.sum(u * u)) * sqrt(ops.sum(v * v)))

    def g(u: np.ndarray, v: np.ndarray, full: bool = True) -> tuple[np.ndarray, ...]:
        nu, nv = np.sqrt(u @ u), np.sqrt(v @ v)
        c = u @ v / (nu * nv)
        du, dv = v / (nu * nv), u / (nu * nv)
        return (du - c * u / nu**2, dv - c * v / nv**2) if full else (du, dv)

    return Case(
        "cosine similarity", f, (u, v), g, {"norms held constant": lambda u, v: g(u, v, False)}
    )


def standardize() -> Case:
    r = _rng(17)
    x, c = r.standard_normal(8), r.standard_normal(8)

    def f(x: Any) -> Any:
        d = x - ops.mean(x)
        return ops.sum(d / sqrt(ops.mean(ops.square(d))) * c)

    def g(x: np.ndarray, full: bool = True) -> tuple[np.ndarray]:
        s = x.std()
        z = (x - x.mean()) / s
        return ((c - c.mean() - z * np.mean(c * z)) / s if full else c / s,)

    return Case("standardized x", f, (x,), g, {"mean and std held constant": lambda x: g(x, False)})


def broadcast_scale() -> Case:
    r = _rng(18)
    x, w = r.standard_normal((6, 4)), r.standard_normal(4)

    def g(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
        return 2 * x * w**2, 2 * np.sum(x * x * w, axis=0)

    return Case(
        "sum (x w)^2, w broadcast over rows",
        lambda x, w: ops.sum(ops.square(x * w)),
        (x, w),
        g,
        {"w: first row only, no sum": lambda x, w: (2 * x * w**2, 2 * x[0] * x[0] * w)},
    )


def outer_fit() -> Case:
    r = _rng(19)
    u, v, m = r.standard_normal(4), r.standard_normal(4), r.standard_normal((4, 4))

    def f(u: Any, v: Any, m: Any) -> Any:
        uv = ops.matmul(ops.reshape(u, (4, 1)), ops.reshape(v, (1, 4)))
        return ops.sum(ops.square(uv - m))

    def g(u: np.ndarray, v: np.ndarray, m: np.ndarray, transpose: bool = False) -> Any:
        res = np.outer(u, v) - m
        return 2 * res @ v, 2 * (res if transpose else res.T) @ u, -2 * res

    return Case(
        "rank-one fit", f, (u, v, m), g, {"d/dv: R u, not R.T u": lambda u, v, m: g(u, v, m, True)}
    )


def log_sum() -> Case:
    x = _rng(20).uniform(0.5, 3.0, 6)
    return Case(
        "sum log x",
        lambda x: ops.sum(ops.log(x)),
        (x,),
        lambda x: (1 / x,),
        {"1 / x^2": lambda x: (1 / x**2,)},
    )


def cubic() -> Case:
    x = _rng(21).standard_normal(6)
    return Case(
        "x^3 - 2x",
        lambda x: ops.sum(x * x * x - 2.0 * x),
        (x,),
        lambda x: (3 * x**2 - 2,),
        {"dropped factor 3": lambda x: (x**2 - 2,)},
    )


# ------------------------------------------------------------------- kinks


def relu_net() -> Case:
    """A 3-6-1 ReLU net on generic data: no input at a kink."""
    r = _rng(22)
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
    r = _rng(seed)
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
    r = _rng(24)
    w1, w2, w3 = r.standard_normal((4, 5)), r.standard_normal((5, 5)), r.standard_normal(5)
    b1, b2 = np.zeros(5), np.zeros(5)
    x = r.standard_normal((5, 4))
    x[0] = 0.0
    f, make = two_relu_layers(r.standard_normal(5))

    valid, wrong = conventions(make, [1.0], [5.0, -1.0])
    return Case("deep relu net, zero row", f, (w1, b1, w2, b2, w3, x), make(0.0), wrong, valid)


def relu_sum() -> Case:
    r = _rng(25)
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
    r = _rng(26)
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
    r = _rng(27)
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
    r = _rng(28)
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
    r = _rng(29)
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
    r = _rng(30)
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
    r = _rng(31)
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
    r = _rng(32)
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
    c = _rng(33).uniform(0.5, 2.0, 5)

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


CASES = [
    sum_squares(),
    linreg(),
    linear_layer(),
    logistic(),
    softmax_xent(),
    tanh_layer(),
    sigmoid_bce(),
    sincos(),
    exp_weighted(),
    logsumexp(),
    matmul_square(),
    quadratic_form(),
    mlp_tanh(),
    division(),
    norm(),
    cosine(),
    standardize(),
    broadcast_scale(),
    outer_fit(),
    log_sum(),
    cubic(),
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
