"""Normalization of the inputs with the training set's statistics, and the lesson's checks.

The lesson normalizes both sets with the *training* mean and standard deviation
(one scalar each, over every pixel) and then asserts that the normalized
training set has mean ~0 and std ~1. On MNIST scaled to [0, 1]: train mean
0.13066, std 0.30811; afterwards the validation set has mean ~0.0060, std ~1.0077.
"""

from __future__ import annotations

import dataclasses

import numpy as np

CHECK_TOL = 1e-3  # the lesson's tolerance: |train mean| < 1e-3 and |train std - 1| < 1e-3


@dataclasses.dataclass(frozen=True)
class Stats:
    """Mean and (population) standard deviation over every element, as float."""

    mean: float
    std: float


@dataclasses.dataclass(frozen=True)
class Check:
    """One of the lesson's checks: `|value - target| < tol`."""

    name: str
    value: float
    target: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(abs(self.value - self.target) < self.tol)


@dataclasses.dataclass(frozen=True)
class NormalizeReport:
    """Statistics of both sets before and after, the statistics used, and the checks."""

    train_before: Stats
    valid_before: Stats
    train_after: Stats
    valid_after: Stats
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: stats under set/stage keys, checks with their pass flags."""
        stats = {
            f"{s}_{stage}": dataclasses.asdict(getattr(self, f"{s}_{stage}"))
            for s in ("train", "valid")
            for stage in ("before", "after")
        }
        checks = [{**dataclasses.asdict(c), "passed": c.passed} for c in self.checks]
        return {**stats, "checks": checks, "ok": self.ok}


def stats(x: np.ndarray, chunk_rows: int = 8192) -> Stats:
    """Mean and std of every element of `x` (N, ...), accumulated in float64 by row chunks.

    Chunking keeps the float64 temporaries small (a few MB) on the 47 M MNIST pixels.
    """
    n = x.size
    total = 0.0
    total_sq = 0.0
    for start in range(0, x.shape[0], chunk_rows):
        c = x[start : start + chunk_rows].astype(np.float64)
        total += float(c.sum())
        flat = c.reshape(-1)
        total_sq += float(flat @ flat)
    mean = total / n
    return Stats(mean, float(np.sqrt(max(total_sq / n - mean * mean, 0.0))))


def normalize(x: np.ndarray, s: Stats, *, out: np.ndarray | None = None) -> np.ndarray:
    """(x - s.mean) / s.std, in x's float dtype; pass `out=x` to normalize in place."""
    out = np.subtract(x, np.asarray(s.mean, dtype=x.dtype), out=out)
    result: np.ndarray = np.divide(out, np.asarray(s.std, dtype=x.dtype), out=out)
    return result


def normalize_pair(
    x_train: np.ndarray, x_valid: np.ndarray, *, inplace: bool = False
) -> tuple[np.ndarray, np.ndarray, Stats, NormalizeReport]:
    """Normalize both sets with the training statistics and run the lesson's checks.

    Returns (train, valid, training stats, report). With `inplace` the inputs are
    overwritten (no copy of the 188 MB training matrix).
    """
    train_before, valid_before = stats(x_train), stats(x_valid)
    xt = normalize(x_train, train_before, out=x_train if inplace else None)
    xv = normalize(x_valid, train_before, out=x_valid if inplace else None)
    train_after, valid_after = stats(xt), stats(xv)
    checks = (
        Check("train mean ~ 0", train_after.mean, 0.0, CHECK_TOL),
        Check("train std ~ 1", train_after.std, 1.0, CHECK_TOL),
    )
    report = NormalizeReport(train_before, valid_before, train_after, valid_after, checks)
    return xt, xv, train_before, report
