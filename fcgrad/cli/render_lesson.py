"""Drawing the lesson: each section as a short table of its checks (pass or FAIL), its
numbers and its notes, top to bottom, then one line with the verdict. Fits 80 columns."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fcgrad.lesson import Lesson, Section


def lesson(result: Lesson) -> Group:
    """Every section in order, then `all N checks pass` or the failed checks."""
    parts: list[Table | Text] = []
    for i, section in enumerate(result.sections, start=1):
        parts += _section(i, section)
    parts.append(_verdict(result))
    return Group(*parts)


def _section(i: int, section: Section) -> list[Table | Text]:
    parts: list[Table | Text] = [Text.from_markup(f"\n[bold]{i}. {escape(section.title)}[/]")]
    if section.columns:
        numbers = Table()
        for j, col in enumerate(section.columns):
            numeric = all(_numeric(row[j]) for row in section.rows)
            numbers.add_column(col, justify="right" if numeric else "left")
        for row in section.rows:
            numbers.add_row(*(escape(c) for c in row))
        parts.append(numbers)
    if section.checks:
        checks = Table()
        checks.add_column("check")
        checks.add_column("value", justify="right")
        checks.add_column("expected", justify="right")
        checks.add_column("status")
        for c in section.checks:
            status = "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
            checks.add_row(escape(c.name), escape(c.value), escape(c.expected), status)
        parts.append(checks)
    parts += [Text(note, style="dim") for note in section.notes]
    return parts


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _verdict(result: Lesson) -> Text:
    if result.ok:
        return Text.from_markup(f"\n[green]all {result.n_checks} checks pass[/]")
    failed = result.failures()
    listed = "; ".join(failed)
    return Text.from_markup(
        f"\n[bold red]{len(failed)} of {result.n_checks} checks FAIL[/]: {escape(listed)}"
    )
