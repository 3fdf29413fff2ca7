"""The gradcheck and bench tables on a narrow terminal (80 columns): fewer columns without
vertical rules, every number whole, and what was dropped said below the table.

`Responsive` draws the wide table where it fits and the narrow one where it does not,
deciding at render time from the width rich gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from fcgrad.bench.timing import BenchResult, Timing
from fcgrad.checking.net_gradcheck import FD_REFERENCE, TESTSAME, CheckRow, GradCheckResult

WIDE = 130  # columns the wide gradcheck and bench tables need


class Responsive:
    """`wide()` on a console of at least `min_width` columns, else `narrow()`."""

    def __init__(
        self,
        wide: Callable[[], RenderableType],
        narrow: Callable[[], RenderableType],
        min_width: int = WIDE,
    ) -> None:
        self.wide, self.narrow, self.min_width = wide, narrow, min_width

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        yield self.wide() if options.max_width >= self.min_width else self.narrow()


def stacked(table: Table) -> Group:
    """`table` as a stack of lines on a narrow terminal: the title, then one line per row,
    its first cell in bold and every other non-empty cell as 'header value', wrapped
    rather than cut."""
    headers = [str(c.header) for c in table.columns]
    columns = [list(c.cells) for c in table.columns]
    lines: list[RenderableType] = []
    if table.title:
        lines.append(Text.from_markup(f"[bold]{table.title}[/]"))
    for i in range(table.row_count):
        cells = [str(col[i]) if i < len(col) else "" for col in columns]
        rest = "; ".join(f"{h} {c}" for h, c in zip(headers[1:], cells[1:]) if c.strip())
        lines.append(Text.from_markup(f"  [bold]{cells[0]}[/]  {rest}"))
    return Group(*lines)


def fitting(table: Table, min_width: int = 110) -> Responsive:
    """`table` where it fits in `min_width` columns, else `stacked(table)`."""
    return Responsive(lambda: table, lambda: stacked(table), min_width)


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")


def shape_text(shape: tuple[int, ...]) -> str:
    """Dimensions joined by a multiplication sign (784 by 50); 'scalar' for ()."""
    return "×".join(map(str, shape)) or "scalar"


def _array(r: CheckRow) -> str:
    return f"{r.parameter} {shape_text(r.shape)}"


def gradcheck(result: GradCheckResult, status: Callable[[bool], str]) -> Group:
    """strategy, array and shape, reference ('fd' for central differences), max rel err,
    worst element, kinks, status; each failure's values on a line of its own below."""
    cfg = result.config
    table = _table(
        f"Gradient check ({cfg.net().describe()}; {result.n_rows:,} rows, "
        f"fd on {result.n_fd_rows:,})"
    )
    for col in ("strategy", "array", "vs", "rel err", "worst at", "kinks", "status"):
        table.add_column(
            col, justify="right" if col in ("rel err", "kinks") else "left", no_wrap=True
        )
    failed = []
    for r in result.rows:
        vs = "fd" if r.reference == FD_REFERENCE else r.reference
        if r.reference == TESTSAME:
            cells = [r.parameter, vs, "", r.note, ""]
        else:
            worst = ",".join(map(str, r.worst_index))
            cells = [_array(r), vs, f"{r.max_rel_error:.2g}", worst, str(r.kinks or "")]
        table.add_row(r.strategy, *cells, status(r.passed))
        if not r.passed:
            failed.append(r)
    notes = [
        Text(
            f"FAIL {r.strategy} {r.parameter} vs {r.reference}: "
            + (
                r.note
                or f"at [{', '.join(map(str, r.worst_index))}] {r.value:.6g} against "
                f"{r.ref_value:.6g} (max abs err {r.max_abs_error:.3g})"
            ),
            style="red",
        )
        for r in failed
    ]
    hint = Text(
        "fd: float64 central differences; a wider terminal or --json shows every "
        "column (max abs err, values)",
        style="dim",
    )
    return Group(table, *notes, hint)


def bench(result: BenchResult, order: Callable[[Timing], tuple[int, float]]) -> Group:
    """One table per phase: implementation, median, min and max ms, vs gemm, GFLOP/s, MB."""
    cfg = result.config
    head = Text(
        f"Timings in ms, {cfg.repeat} runs after {cfg.warmup} warm-up "
        f"({cfg.net(result.sizes[0]).describe()}, {result.n_rows:,} rows; {result.blas}, "
        f"{result.threads.describe()})"
    )
    tables: list[RenderableType] = [head]
    phases: dict[str, list[Timing]] = {}
    for t in sorted(result.timings, key=order):
        phases.setdefault(t.phase, []).append(t)
    for phase, timings in phases.items():
        table = _table(phase)
        for col in (
            "implementation",
            "median",
            "min",
            "max",
            "vs gemm",
            "vs best",
            "GFLOP/s",
            "MB",
        ):
            table.add_column(col, justify="left" if col == "implementation" else "right")
        for t in timings:
            table.add_row(
                t.implementation,
                ms(t.median_ms),
                ms(t.min_ms),
                ms(t.max_ms),
                *ratio_cells(t),
            )
        tables.append(table)
    tables += bench_notes(result)
    tables.append(Text("a wider terminal or --json also shows the average", style="dim"))
    return Group(*tables)


def bench_notes(result: BenchResult) -> list[Text]:
    """Below the timings: each epoch with one core busy against the same epoch quiet."""
    slow = result.busy_slowdowns()
    if not slow:
        return []
    each = ", ".join(f"{impl} {ratio:.2f}x" for impl, ratio in slow.items())
    return [Text(f"one core busy, each epoch against its quiet median: {each}")]


def ratio_cells(t: Timing) -> list[str]:
    """A timing's ratio to the GEMM reference and to the fastest, GFLOP/s and peak MB."""
    return [
        "" if t.ratio_to_reference is None else f"{t.ratio_to_reference:.2f}x",
        f"{t.ratio:.2f}x",
        f"{t.gflops:.1f}",
        "" if t.peak_mb is None else f"{t.peak_mb:.0f}",
    ]


def ms(value: float) -> str:
    """Milliseconds with three significant digits below 1 ms (a batch step), else two decimals."""
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"
