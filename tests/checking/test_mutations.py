"""Testing the tester: check_grads at its defaults on a corpus of right and wrong gradients.

Every wrong rule must fail, and the report's first line must name an element whose
gradient is wrong (or, for a gradient of the wrong shape, the argument); every
correct gradient must pass, kinks and all, whichever valid convention it uses there.
The corpus is `tests/checking/corpus.py`; the mistakes any gradient can have are
added here, each kept only when it changes the gradient.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fcgrad import check_grads
from tests.checking.corpus import CASES, Case, Grad

ELEMENT = re.compile(r"^coordinates(?: near x, off its kinks)?: args\[(\d+)\]\[([\d, ]*)\]")
NAMED = re.compile(r"args\[(\d+)\]\[([\d, ]*)\]")  # the elements a tie's line names
SHAPE = re.compile(
    r"^(?:structure: gradients have the inputs' shapes and dtypes: )?args\[(\d+)\]: gradient"
)


def _scaled(g: Grad, k: int, factor: float) -> Grad:
    return lambda *a: tuple(x * factor if i == k else x for i, x in enumerate(g(*a)))


def _everywhere(g: Grad, factor: float) -> Grad:
    return lambda *a: tuple(x * factor for x in g(*a))


def _one_element(g: Grad, k: int, case: Case) -> Grad:
    """A 1% error in one element of argument k: one of the large ones (seeded)."""
    right = g(*case.args)[k]
    big = np.flatnonzero(np.abs(right) >= 0.1 * np.abs(right).max())
    j = int(np.random.default_rng(k + 1).choice(big))

    def wrong(*a: Any) -> tuple[np.ndarray, ...]:
        out = [np.array(x, dtype=float) for x in g(*a)]
        out[k].flat[j] *= 1.01
        return tuple(out)

    return wrong


def _stale(g: Grad, case: Case) -> Grad:
    """The gradient at a stale point: every argument 1% of its scale away (seeded)."""
    rng = np.random.default_rng(99)
    shifts = [
        0.01 * max(1.0, float(np.abs(x).max())) * rng.standard_normal(x.shape) for x in case.args
    ]
    return lambda *a: g(*(x + s for x, s in zip(a, shifts)))


def _transposed(g: Grad, k: int) -> Grad:
    return lambda *a: tuple(x.T if i == k else x for i, x in enumerate(g(*a)))


def generic(case: Case) -> dict[str, Grad]:
    """The mistakes any gradient can have, for every argument."""
    g, out = case.grad, {}
    for k, x in enumerate(case.args):
        out[f"sign flipped: args[{k}]"] = _scaled(g, k, -1.0)
        out[f"1% error in one element of args[{k}]"] = _one_element(g, k, case)
        if len(case.args) > 1:
            out[f"args[{k}]'s gradient zeroed"] = _scaled(g, k, 0.0)
        if x.ndim == 2 and x.shape[0] == x.shape[1]:
            out[f"transposed: args[{k}]"] = _transposed(g, k)
    out["1e-3 relative error everywhere"] = _everywhere(g, 1.001)
    if case.stale:
        out["a stale evaluation point"] = _stale(g, case)
    return out


def _changes(case: Case, wrong: Grad) -> bool:
    """Whether a mutation changes the gradient at all (a transposed symmetric one does not)."""
    right, got = case.grad(*case.args), wrong(*case.args)
    scale = max(float(np.abs(x).max()) for x in right) or 1.0
    return any(
        np.shape(a) != np.shape(b) or float(np.abs(np.subtract(a, b)).max()) > 1e-9 * scale
        for a, b in zip(right, got)
    )


WRONG = [
    (case, name, wrong)
    for case in CASES
    for name, wrong in {**case.wrong, **generic(case)}.items()
    if _changes(case, wrong)
]
RIGHT = [(case, "as written", case.grad) for case in CASES] + [
    (case, name, g) for case in CASES for name, g in case.valid.items()
]


def test_the_corpus_is_as_large_as_promised() -> None:
    kinky = [item for item in RIGHT if item[1] != "as written"]
    assert len(CASES) >= 30 and len(WRONG) >= 200 and len(kinky) >= 15, (
        len(CASES),
        len(WRONG),
        len(kinky),
    )


def _id(item: tuple[Case, str, Callable[..., Any]]) -> str:
    return f"{item[0].name}: {item[1]}"


@pytest.mark.parametrize("item", WRONG, ids=_id)
def test_every_wrong_rule_fails_and_the_report_names_a_wrong_element(
    item: tuple[Case, str, Grad],
) -> None:
    case, _, wrong = item
    report = check_grads(case.f, case.args, grad=wrong)
    assert not report.ok
    first = report.problems()[0]
    shape = SHAPE.match(first)
    if shape:  # a gradient of the wrong shape names the argument
        k = int(shape.group(1))
        assert np.shape(wrong(*case.args)[k]) != case.args[k].shape
        return
    right, got = case.grad(*case.args), wrong(*case.args)
    element = ELEMENT.match(first)
    if element is None and first.startswith("tied inputs at"):  # the tie's elements, jointly
        named = [_index(m) for m in NAMED.finditer(first)]
        assert any(got[k][ix] != right[k][ix] for k, ix in named), f"{first}: all right"
        return
    assert element, first
    k, ix = _index(element)
    assert got[k][ix] != right[k][ix], f"{first}: that element is right"


def _index(match: re.Match[str]) -> tuple[int, tuple[int, ...]]:
    return int(match.group(1)), tuple(int(i) for i in match.group(2).split(",") if i.strip())


@pytest.mark.parametrize("item", RIGHT, ids=_id)
def test_every_correct_gradient_passes(item: tuple[Case, str, Grad]) -> None:
    case, _, right = item
    report = check_grads(case.f, case.args, grad=right)
    assert report.ok, report.problems()
