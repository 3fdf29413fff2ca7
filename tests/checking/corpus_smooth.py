"""The corpus's smooth functions: each gradient wrong by a dropped factor, a sign, a sum."""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine import ops
from tests.checking.corpus_case import Case, rng


def sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + ops.exp(-z))


def tanh(z: Any) -> Any:
    return 1.0 - 2.0 / (ops.exp(2.0 * z) + 1.0)


def np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def sqrt(s: Any) -> Any:
    return ops.exp(0.5 * ops.log(s))


def sum_squares() -> Case:
    x = rng(1).standard_normal(7)
    return Case(
        "sum of squares",
        lambda x: ops.sum(ops.square(x)),
        (x,),
        lambda x: (2 * x,),
        {"dropped factor 2": lambda x: (x,)},
    )


def linreg() -> Case:
    r = rng(2)
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
    r = rng(3)
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
    r = rng(4)
    w, x = r.standard_normal(3), r.standard_normal((10, 3))
    t = np.where(r.standard_normal(10) > 0, 1.0, -1.0)

    def f(w: Any, x: Any) -> Any:
        return ops.mean(ops.log(1.0 + ops.exp(-t * ops.matmul(x, w))))

    def g(w: np.ndarray, x: np.ndarray, sign: float = -1.0) -> tuple[np.ndarray, ...]:
        dz = -t * np_sigmoid(sign * t * (x @ w)) / t.size
        return x.T @ dz, np.outer(dz, w)

    return Case("logistic loss", f, (w, x), g, {"sigmoid of +tz": lambda w, x: g(w, x, 1.0)})


def softmax_xent() -> Case:
    r = rng(5)
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
    r = rng(6)
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
    r = rng(7)
    w, x, t = r.standard_normal(3), r.standard_normal((10, 3)), (r.random(10) > 0.5) * 1.0

    def f(w: Any, x: Any) -> Any:
        p = sigmoid(ops.matmul(x, w))
        return -ops.mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))

    def g(w: np.ndarray, x: np.ndarray, sign: float = 1.0) -> tuple[np.ndarray, ...]:
        dz = sign * (np_sigmoid(x @ w) - t) / t.size
        return x.T @ dz, np.outer(dz, w)

    return Case("sigmoid cross-entropy", f, (w, x), g, {"t - p": lambda w, x: g(w, x, -1.0)})


def sincos() -> Case:
    r = rng(8)
    x, y = r.standard_normal(6), r.standard_normal(6)
    return Case(
        "sin x cos y",
        lambda x, y: ops.sum(ops.sin(x) * ops.cos(y)),
        (x, y),
        lambda x, y: (np.cos(x) * np.cos(y), -np.sin(x) * np.sin(y)),
        {"cos' = sin": lambda x, y: (np.cos(x) * np.cos(y), np.sin(x) * np.sin(y))},
    )


def exp_weighted() -> Case:
    r = rng(9)
    x, y = r.standard_normal(5), r.standard_normal(5)
    return Case(
        "exp x times y",
        lambda x, y: ops.sum(ops.exp(x) * y),
        (x, y),
        lambda x, y: (np.exp(x) * y, np.exp(x)),
        {"product rule: one term": lambda x, y: (np.exp(x), np.exp(x))},
    )


def logsumexp() -> Case:
    x = rng(10).standard_normal(6)
    return Case(
        "log-sum-exp",
        lambda x: ops.log(ops.sum(ops.exp(x))),
        (x,),
        lambda x: (np.exp(x) / np.exp(x).sum(),),
        {"not normalized": lambda x: (np.exp(x),)},
    )


def matmul_square() -> Case:
    r = rng(11)
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
    r = rng(12)
    a, x = r.standard_normal((4, 4)), r.standard_normal(4)
    return Case(
        "x . A x",
        lambda a, x: ops.sum(x * ops.matmul(a, x)),
        (a, x),
        lambda a, x: (np.outer(x, x), (a + a.T) @ x),
        {"2 A x, as if A were symmetric": lambda a, x: (np.outer(x, x), 2 * a @ x)},
    )


def mlp_tanh() -> Case:
    r = rng(13)
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
    r = rng(14)
    x, y = r.standard_normal(5), r.uniform(0.5, 2.0, 5)
    return Case(
        "x / y",
        lambda x, y: ops.sum(x / y),
        (x, y),
        lambda x, y: (1 / y, -x / y**2),
        {"d/dy: -x / y": lambda x, y: (1 / y, -x / y)},
    )


def norm() -> Case:
    x = rng(15).standard_normal(6)
    n = float(np.sqrt(x @ x))
    return Case(
        "euclidean norm",
        lambda x: sqrt(ops.sum(ops.square(x))),
        (x,),
        lambda x: (x / np.sqrt(x @ x),),
        {"forgot / norm": lambda x: (x,), "2 x / norm": lambda x: (2 * x / n,)},
    )


def cosine() -> Case:
    r = rng(16)
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
    r = rng(17)
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
    r = rng(18)
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
    r = rng(19)
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
    x = rng(20).uniform(0.5, 3.0, 6)
    return Case(
        "sum log x",
        lambda x: ops.sum(ops.log(x)),
        (x,),
        lambda x: (1 / x,),
        {"1 / x^2": lambda x: (1 / x**2,)},
    )


def cubic() -> Case:
    x = rng(21).standard_normal(6)
    return Case(
        "x^3 - 2x",
        lambda x: ops.sum(x * x * x - 2.0 * x),
        (x,),
        lambda x: (3 * x**2 - 2,),
        {"dropped factor 3": lambda x: (x**2 - 2,)},
    )


SMOOTH = [
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
]
