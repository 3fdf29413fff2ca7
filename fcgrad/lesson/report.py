"""The lesson's result: sections of checks (each pass or FAIL) and the numbers beside them."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Check:
    """One of the lesson's checks: what is checked, the value found (as shown), what the
    lesson expects (the rule, as shown), and whether it holds. NaN never passes."""

    name: str
    value: str
    expected: str
    passed: bool

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def near(name: str, value: float, target: float, tol: float, *, digits: int = 4) -> Check:
    """`|value - target| <= tol`, shown to `digits` decimals."""
    ok = _finite(value) and abs(value - target) <= tol
    return Check(name, f"{value:.{digits}f}", f"{target:.{digits}f} ± {tol:g}", ok)


def small(name: str, value: float, tol: float) -> Check:
    """`|value| < tol` (the lesson's near-zero checks)."""
    ok = _finite(value) and abs(value) < tol
    return Check(name, f"{value:.3g}", f"|value| < {tol:g}", ok)


def equal(name: str, value: object, target: object) -> Check:
    """`value == target`."""
    return Check(name, str(value), f"= {target}", value == target)


@dataclasses.dataclass
class Section:
    """One section of the lesson: a key (its name in JSON), a title, its checks, an optional
    table of numbers that are shown but not checked (`columns`, `rows` of strings), notes
    (lines shown below), and `data`, its numbers for JSON."""

    key: str
    title: str
    checks: list[Check] = dataclasses.field(default_factory=list)
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    data: dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            **self.data,
            "checks": [c.to_dict() for c in self.checks],
            "ok": self.ok,
        }


@dataclasses.dataclass
class Lesson:
    """Every section, in reading order, and the options of the run."""

    sections: list[Section]
    seed: int
    repeat: int

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sections)

    def failures(self) -> list[str]:
        """`section: check` for every check that failed."""
        return [f"{s.key}: {c.name}" for s in self.sections for c in s.checks if not c.passed]

    @property
    def n_checks(self) -> int:
        return sum(len(s.checks) for s in self.sections)

    def to_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "repeat": self.repeat,
            "ok": self.ok,
            "checks": self.n_checks,
            "failures": self.failures(),
            "sections": {s.key: s.to_dict() for s in self.sections},
        }
