"""Rich rendering of a user function's gradient check (`fcgrad gradcheck --function`): one
row per argument leaf, then the failed and kinked elements, the random directions, the
structural checks, the rule and the verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fcgrad.checking.check_grads import GradCheckReport
from fcgrad.checking.kinks import MAX_KINKS
from fcgrad.cli import render_narrow
from fcgrad.cli.render import _count, _g, _shape, _status


def check_report(report: GradCheckReport) -> Group:
    """A user function's check: one row per argument leaf, then the failed and kinked
    elements, the random directions, the structural checks, the rule and the verdict."""
    tables = [_leaf_table(report)]
    elements = _element_table(report)
    if elements.row_count:
        tables.append(elements)
    if report.directions:
        tables.append(_direction_table(report))
    parts: list[Any] = [render_narrow.fitting(t, min_width=150) for t in tables]
    parts.append(
        Text.from_markup(
            "\n".join(
                f"{_status(s.ok)}  {s.name}{': ' + escape(s.detail) if s.detail else ''}"
                for s in report.structural
            )
        )
    )
    parts.append(Text(f"tolerance: {report.rule}; seed {report.seed}", style="dim"))
    kinks = sum(leaf.n_kinks for leaf in report.leaves)
    kink_note = (
        f"; {_count(kinks, 'kink')} passed (not differentiable there: a valid subgradient)"
        if kinks
        else ""
    )
    unjudged = sum(leaf.unjudged for leaf in report.leaves)
    if unjudged:
        kink_note += (
            f"; {unjudged:,} more not judged (of each argument's kinks, the {MAX_KINKS:,} "
            "largest jumps are, and those sampled)"
        )
    problems = report.problems()
    parts.append(
        Text.from_markup(
            f"[bold green]gradient check passed[/]{kink_note}"
            if report.ok
            else f"[bold red]gradient check FAILED[/]: {escape(problems[0])}{kink_note}"
        )
    )
    return Group(*parts)


def _leaf_table(report: GradCheckReport) -> Table:
    table = Table(title=f"check_grads({escape(report.function)}) = {report.value:.8g}")
    for col in (
        "argument",
        "shape",
        "dtype",
        "checked",
        "failures",
        "kinks",
        "max abs err",
        "max rel err",
        "worst index",
        "analytic",
        "numeric",
        "status",
    ):
        right = (
            col in ("checked", "failures", "kinks")
            or "err" in col
            or col in ("analytic", "numeric")
        )
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for leaf in report.leaves:
        w = leaf.worst
        where = (str(list(w.index)), f"{w.analytic:.8g}", f"{w.numeric:.8g}") if w else ("", "", "")
        errors = (_g(leaf.max_abs_error), _g(leaf.max_rel_error))
        if leaf.note:  # a gradient of another shape: nothing was compared
            where, errors = (escape(leaf.note), "", ""), ("", "")
        table.add_row(
            leaf.name,
            _shape(leaf.shape),
            leaf.dtype,
            str(leaf.checked),
            str(leaf.n_failures),
            str(leaf.n_kinks),
            *errors,
            *where,
            _status(leaf.ok),
        )
    return table


def _element_table(report: GradCheckReport) -> Table:
    failed = any(leaf.failures for leaf in report.leaves)
    title = "Elements that failed (worst first), then kinks" if failed else "Kinks"
    table = Table(title=title)
    for col in (
        "argument",
        "index",
        "kind",
        "analytic",
        "numeric",
        "|diff|",
        "tol",
        "left",
        "right",
        "range that passes",
    ):
        table.add_column(col, justify="left" if col in ("argument", "index", "kind") else "right")
    rows = [(leaf, "[bold red]FAIL[/]", e) for leaf in report.leaves for e in leaf.failures]
    rows.sort(key=lambda row: -row[2].excess)
    rows += [(leaf, "kink", e) for leaf in report.leaves for e in leaf.kinks]
    for leaf, kind, e in rows:
        lo, hi = e.range if e.at_kink else (0.0, 0.0)
        sides = (f"{e.left:.6g}", f"{e.right:.6g}", f"[{lo:.6g}, {hi:.6g}]")
        table.add_row(
            leaf.name,
            str(list(e.index)),
            kind,
            f"{e.analytic + 0.0:.8g}",
            f"{e.numeric + 0.0:.8g}",
            _g(abs(e.analytic - e.numeric)),
            _g(e.tol),
            *(sides if e.at_kink else ("", "", "")),  # one-sided: at a kink only
        )
    return table


def _direction_table(report: GradCheckReport) -> Table:
    table = Table(title="Directions u: grad . u against the central difference along u")
    for col in ("direction", "analytic", "numeric", "|diff|", "tol", "range that passes", "status"):
        table.add_column(col, justify="left" if col in ("direction", "status") else "right")
    for d in report.directions:
        table.add_row(
            escape(d.label) or str(d.index),
            f"{d.analytic:.8g}",
            f"{d.numeric:.8g}",
            _g(abs(d.analytic - d.numeric)),
            _g(d.tol),
            f"[{d.low:.6g}, {d.high:.6g}]" if d.kink else "",
            "kink" if d.kind == "kink" else _status(d.ok),
        )
    return table
