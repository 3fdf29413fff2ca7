"""What `check_grads` found: per argument leaf, per direction, per structural property.

Every failure line names the check, the argument and the element, worst first: the
element that lies the most tolerances away from what passes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from fcgrad.errors import GradCheckFailed
from fcgrad.jsonio import finite

NAN = float("nan")
MAX_LISTED = 10  # failures and kinks listed per leaf (the worst failures)


@dataclasses.dataclass(frozen=True)
class Element:
    """One coordinate: its index, the analytic and numeric derivatives, and the tolerance.

    At a kink, `left` and `right` are the one-sided derivatives and `[low, high]` the
    range a value may lie in there (see `fcgrad.checking.verdict`); NaN elsewhere.
    `near`: judged at a point near x, off its kinks, where a direction had failed.
    """

    index: tuple[int, ...]
    analytic: float
    numeric: float
    tol: float
    left: float = NAN
    right: float = NAN
    low: float = NAN
    high: float = NAN
    near: bool = False  # judged at a nearby point off the kinks at x, not at x itself

    @property
    def at_kink(self) -> bool:
        return not math.isnan(self.left)

    @property
    def between(self) -> bool:
        """For a kink: the analytic value lies in the range that passes (to tol)."""
        lo, hi = self.range
        return bool(lo - self.tol <= self.analytic <= hi + self.tol)

    @property
    def range(self) -> tuple[float, float]:
        """[low, high] at a kink (else the span of the one-sided derivatives)."""
        if not math.isnan(self.low):
            return self.low, self.high
        return min(self.left, self.right), max(self.left, self.right)

    @property
    def excess(self) -> float:
        """How many tolerances the analytic value lies from what passes (inf for NaN)."""
        if self.at_kink:
            lo, hi = self.range
            off = max(lo - self.analytic, self.analytic - hi, 0.0)
        else:
            off = abs(self.analytic - self.numeric)
        if math.isnan(off):
            return math.inf
        return off / self.tol if self.tol > 0 else (math.inf if off else 0.0)


@dataclasses.dataclass
class LeafReport:
    """The coordinate check of one argument leaf (e.g. `params.layers[0].w`).

    `checked` counts the judged coordinates: the sampled ones and, beyond them,
    `detected` coordinates where the analytic gradient jumps (a kink) that sampling
    missed; `unjudged` more such coordinates were left out (the largest jumps are judged,
    `fcgrad.checking.kinks.MAX_KINKS` of them). `failures` lists the worst failures first;
    `note` says why nothing could be compared (a gradient of another shape).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    checked: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst: Element | None = None
    failures: list[Element] = dataclasses.field(default_factory=list)
    kinks: list[Element] = dataclasses.field(default_factory=list)
    n_failures: int = 0
    n_kinks: int = 0
    detected: int = 0
    note: str = ""
    atol: float = 0.0
    unjudged: int = 0  # coordinates at a kink past the most judged per leaf (MAX_KINKS)

    @property
    def ok(self) -> bool:
        return self.n_failures == 0


@dataclasses.dataclass(frozen=True)
class DirectionReport:
    """One direction check: `grad . u` (analytic) against the difference along u.

    `label` says which direction: a random one, or one that shifts tied inputs together
    (`members` names them). `kind` is the verdict ('pass', 'fail', 'kink',
    'kink-outside'); at a kink the value must lie in `[low, high]`.
    """

    index: int
    analytic: float
    numeric: float
    tol: float
    kind: str = "pass"
    low: float = NAN
    high: float = NAN
    label: str = ""
    members: tuple[str, ...] = ()

    @property
    def kink(self) -> bool:
        return self.kind.startswith("kink")

    @property
    def ok(self) -> bool:
        return self.kind in ("pass", "kink")

    @property
    def name(self) -> str:
        return self.label or f"random direction {self.index}"


@dataclasses.dataclass(frozen=True)
class StructuralCheck:
    """A property every correct gradient has; `detail` says what was seen when it fails."""

    name: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass
class GradCheckReport:
    """Everything `check_grads` found; `ok` is True only when no check failed.

    Kinks where the value lies in the range that passes are reported, not failures.
    """

    function: str
    value: float
    leaves: list[LeafReport]
    directions: list[DirectionReport]
    structural: list[StructuralCheck]
    rule: str
    seed: int

    @property
    def ok(self) -> bool:
        return (
            all(leaf.ok for leaf in self.leaves)
            and all(d.ok for d in self.directions)
            and all(s.ok for s in self.structural)
        )

    def problems(self) -> list[str]:
        """One line per failed check, worst first within each kind: structure, then each
        leaf's worst element (the leaves ordered by it), then directions."""
        lines = [f"structure: {s.name}: {s.detail}" for s in self.structural if not s.ok]
        structure = any(not s.ok for s in self.structural)  # it names a misshapen leaf
        lines += [
            f"{leaf.name}: {leaf.note}" for leaf in self.leaves if leaf.note and not structure
        ]
        failing = [leaf for leaf in self.leaves if leaf.failures]
        failing.sort(key=lambda leaf: -leaf.failures[0].excess)
        lines += [_element_line(leaf) for leaf in failing]
        failed = [d for d in self.directions if not d.ok]
        failed.sort(key=lambda d: not d.members)  # a tie's direction names its elements
        lines += [_direction_line(d, hint=not failing) for d in failed]
        return lines

    def raise_if_failed(self) -> None:
        """Raise `GradCheckFailed` naming the worst failed check, argument and element."""
        problems = self.problems()
        if problems:
            extra = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise GradCheckFailed(f"check_grads({self.function}): {problems[0]}{extra}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every leaf, direction and structural check, the rule and the verdict."""
        return {
            "function": self.function,
            "value": self.value,
            "ok": self.ok,
            "rule": self.rule,
            "seed": self.seed,
            "leaves": [{**dataclasses.asdict(leaf), "ok": leaf.ok} for leaf in self.leaves],
            "directions": [
                {**dataclasses.asdict(d), "name": d.name, "ok": d.ok} for d in self.directions
            ],
            "structural": [dataclasses.asdict(s) for s in self.structural],
            "problems": self.problems(),
        }

    def to_json(self) -> str:
        """`to_dict()` as JSON text (NaN and infinities as null)."""
        return json.dumps(finite(self.to_dict()), indent=2)


def _element_line(leaf: LeafReport) -> str:
    e = leaf.failures[0]
    more = f" (and {leaf.n_failures - 1} more)" if leaf.n_failures > 1 else ""
    at = "coordinates near x, off its kinks" if e.near else "coordinates"
    where = f"{at}: {leaf.name}{list(e.index)}: analytic {_num(e.analytic)}"
    if not e.at_kink:
        diff = abs(e.analytic - e.numeric)
        return f"{where} vs numeric {_num(e.numeric)}, |diff| {diff:.3g} > tol {e.tol:.3g}{more}"
    lo, hi = e.range
    sides = sorted((e.left, e.right))
    if (lo, hi) == (sides[0], sides[1]):
        return (
            f"{where} at a kink, outside the one-sided derivatives [{_num(lo)}, {_num(hi)}]{more}"
        )
    return (
        f"{where} at a kink, outside [{_num(lo)}, {_num(hi)}], the range its kinks allow "
        f"(one-sided derivatives {_num(e.left)} and {_num(e.right)}){more}"
    )


def _direction_line(d: DirectionReport, hint: bool = True) -> str:
    """A failed direction's line; `hint`: say how to find the element (none was named)."""
    head = f"{d.name}: analytic {_num(d.analytic)}"
    more = "" if d.members or not hint else " (full=True / --full judges every element)"
    if d.kink:
        return (
            f"{head} at a kink, outside [{_num(d.low)}, {_num(d.high)}], the range its kinks allow"
            + more
        )
    diff = abs(d.analytic - d.numeric)
    return f"{head} vs numeric {_num(d.numeric)}, |diff| {diff:.3g} > tol {d.tol:.3g}{more}"


def _num(v: float) -> str:
    """A value to 8 significant digits, 0 rather than -0."""
    return f"{v + 0.0:.8g}"


def fold(report: LeafReport, kind: str, e: Element) -> None:
    """Count one judged coordinate into the leaf's report (kinks apart from the errors);
    the failures stay sorted worst first, the worst `MAX_LISTED` kept."""
    report.checked += 1
    if kind == "kink":
        report.n_kinks += 1
        if len(report.kinks) < MAX_LISTED:
            report.kinks.append(e)
        return
    if kind in ("fail", "kink-outside") or not math.isfinite(e.numeric - e.analytic):
        report.n_failures += 1
        report.failures.append(e)
        report.failures.sort(key=lambda x: -x.excess)
        del report.failures[MAX_LISTED:]
    if kind == "kink-outside":
        return
    err = abs(e.analytic - e.numeric)
    if not np.isfinite(err):
        if np.isfinite(report.max_abs_error):  # the first NaN becomes the worst and stays
            report.worst = e
        report.max_abs_error = report.max_rel_error = NAN
        return
    if report.worst is None or err > report.max_abs_error:
        report.worst = e
    rel = err / max(abs(e.analytic), abs(e.numeric), 1e-300)
    report.max_abs_error = max(report.max_abs_error, err)
    report.max_rel_error = max(report.max_rel_error, rel)
