"""Rich rendering of the core's result objects: tables, progress bars, live training display.

Nothing here computes: each function takes a result from `fcgrad.data`,
`fcgrad.data.normalize`, `fcgrad.training`, `fcgrad.checking.net_gradcheck` or
`fcgrad.bench.timing` and draws it. Progress goes to stderr so that stdout stays clean for `--json`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from fcgrad.bench.timing import BenchResult, Timing
from fcgrad.checking.net_gradcheck import TESTSAME, GradCheckResult
from fcgrad.cli import render_narrow
from fcgrad.cli.render_narrow import Responsive
from fcgrad.data import DownloadReport
from fcgrad.data.normalize import NormalizeReport
from fcgrad.training.train import EpochResult, TrainResult

PASS, FAIL = "[green]pass[/]", "[bold red]FAIL[/]"


def _status(ok: bool) -> str:
    return PASS if ok else FAIL


def _count(n: int, noun: str) -> str:
    """'1 epoch', '5 epochs', '2,068 kinks'."""
    return f"{n} {noun}" if n == 1 else f"{n:,} {noun}s"


def _g(v: float, spec: str = ".3g") -> str:
    return format(v, spec)


# ----------------------------------------------------------------------------- download


class DownloadBar:
    """A `fcgrad.data.DownloadProgress` drawn as a rich bar: bytes, speed, time left."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, name: str, total_bytes: int | None, source: str) -> None:
        host = urlsplit(source).netloc or os.path.dirname(source)  # or a folder mirror
        self._task = self._progress.add_task(name, total=total_bytes, source=host)

    def advance(self, n_bytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n_bytes)

    def end(self, ok: bool) -> None:
        if self._task is not None and not ok:
            self._progress.remove_task(self._task)
        self._task = None


DOWNLOAD_BAR_FIXED = 59  # file name, bytes, speed, time left and the gaps, at their widest


@contextmanager
def download_bar(console: Console) -> Iterator[DownloadBar]:
    """A `DownloadBar` live on `console` for the duration of the block: the file, a bar,
    bytes, speed and time left, never cut; then the mirror's host, only in the room left
    (the whole URL took the row at 80 columns and cut the bar away; the table after the
    download names each mirror in full)."""
    bar = min(28, max(4, console.width - DOWNLOAD_BAR_FIXED))
    room = console.width - DOWNLOAD_BAR_FIXED - bar - 1
    columns: list[str | ProgressColumn] = [
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=bar),
        DownloadColumn(table_column=Column(no_wrap=True)),
        TransferSpeedColumn(table_column=Column(no_wrap=True)),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
    ]
    if room >= 16:
        columns.append(
            TextColumn(
                "{task.fields[source]}",
                style="dim",
                markup=False,
                table_column=Column(max_width=room, no_wrap=True, overflow="ellipsis"),
            )
        )
    progress = Progress(
        *columns,
        console=console,
        disable=not console.is_terminal,  # a log gets the summary table, not bar frames
    )
    with progress:
        yield DownloadBar(progress)


class StepsBar:
    """`fcgrad.progress.Steps` drawn as a bar with the step's label and the elapsed and
    remaining time."""

    def __init__(self, progress: Progress) -> None:
        self._progress, self._done = progress, 0
        self._task_id: TaskID | None = None

    def start(self, total: int) -> None:
        self._task_id = self._progress.add_task("starting", total=total)

    def step(self, label: str) -> None:
        """`label` begins; every step before it is done."""
        if self._task_id is not None:
            self._progress.update(self._task_id, description=label, completed=self._done)
            self._done += 1


STEPS_BAR_FIXED = 48  # the bar, 'N/M', and the labelled times: what the label leaves room for


@contextmanager
def steps_bar(console: Console, enabled: bool = True) -> Iterator[StepsBar]:
    """A `StepsBar` on `console` (stderr) for the block, shown only on a terminal and when
    `enabled` (not with --json), and gone when the block ends. On a narrow terminal the
    step's label gives way (cut to '…'), never the count or the times."""
    label = max(8, console.width - STEPS_BAR_FIXED)
    progress = Progress(
        TextColumn(
            "{task.description}",
            table_column=Column(max_width=label, no_wrap=True, overflow="ellipsis"),
        ),
        BarColumn(bar_width=8),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )
    with progress:
        yield StepsBar(progress)


def download_table(report: DownloadReport) -> Group:
    """File, bytes, checksum status; the mirror each came from below the table (a URL in
    a column was folded mid-word at 80 columns), numbered in a column when there were
    several; then one line per mirror that failed, with the files it failed for and why."""
    used = list(dict.fromkeys(r.mirror.removesuffix(r.name) for r in report.rows if r.mirror))
    table = Table(title="MNIST files")
    table.add_column("file", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    table.add_column("checksum", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if len(used) > 1:
        table.add_column("mirror", justify="right", no_wrap=True)
    for row in report.rows:
        cells = [row.name, f"{row.size_bytes:,}", "[green]sha256 ok[/]", row.status]
        if len(used) > 1:
            mine = row.mirror.removesuffix(row.name) if row.mirror else None
            cells.append(str(used.index(mine) + 1) if mine is not None else "")
        table.add_row(*cells)
    if len(used) > 1:
        sources = [Text(f"mirror {i}: {url}") for i, url in enumerate(used, 1)]
    elif used:
        sources = [Text(f"downloaded from {used[0]}")]
    else:
        sources = [Text("nothing downloaded: every file was already here", style="dim")]
    return Group(table, *sources, *_failed_mirrors(report))


def _failed_mirrors(report: DownloadReport) -> list[Text]:
    """'MIRROR failed for N files (why; why)': a mirror once, however often it was tried."""
    files: dict[str, list[str]] = {}
    reasons: dict[str, list[str]] = {}
    for row in report.rows:
        for url, reason in row.attempts:
            mirror = url.removesuffix(row.name)
            if row.name not in files.setdefault(mirror, []):
                files[mirror].append(row.name)
            if reason not in reasons.setdefault(mirror, []):
                reasons[mirror].append(reason)
    lines = []
    for mirror, names in files.items():
        which = names[0] if len(names) == 1 else f"{len(names)} files"
        why = "; ".join(reasons[mirror])
        lines.append(Text(f"{mirror} failed for {which} ({why})", style="yellow"))
    return lines


# ----------------------------------------------------------------------------- normalize


def normalize_table(report: NormalizeReport) -> Group:
    """Mean and std of both sets before and after, then the lesson's checks."""
    stats = Table(title="Normalization with the training statistics")
    for col in ("set", "mean before", "std before", "mean after", "std after"):
        stats.add_column(col, justify="left" if col == "set" else "right")
    for name in ("train", "valid"):
        b, a = getattr(report, f"{name}_before"), getattr(report, f"{name}_after")
        stats.add_row(name, f"{b.mean:.5f}", f"{b.std:.5f}", f"{a.mean:.4f}", f"{a.std:.4f}")
    checks = Table(title="Checks")
    for col in ("check", "value", "rule", "status"):
        checks.add_column(col)
    for c in report.checks:
        checks.add_row(
            c.name, f"{c.value:.3g}", f"|value - {c.target:g}| < {c.tol:g}", _status(c.passed)
        )
    return Group(stats, checks)


# ----------------------------------------------------------------------------- train


def epoch_table(rows: list[EpochResult], title: str) -> Table:
    """A row per epoch: train loss, valid loss, valid accuracy, seconds."""
    table = Table(title=title)
    for col in ("epoch", "train loss", "valid loss", "valid accuracy", "seconds"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.epoch),
            f"{r.train_loss:.4f}",
            f"{r.valid_loss:.4f}",
            f"{r.valid_accuracy:.2%}",
            f"{r.seconds:.2f}",
        )
    return table


class TrainDisplay:
    """A `fcgrad.training.train.TrainProgress`: a live epoch table above a step progress bar
    that reads 'epoch 2/5', the steps done, the mean loss of the epoch's steps so far, and
    the elapsed and remaining time of the epoch (78 columns)."""

    def __init__(self, live: Live, title: str, epochs: int) -> None:
        self._live = live
        self._title = title
        self._rows: list[EpochResult] = []
        self._bar = Progress(
            TextColumn(f"epoch {{task.fields[epoch]}}/{epochs}"),
            BarColumn(bar_width=10),
            MofNCompleteColumn(),
            TextColumn("mean loss {task.fields[loss]:.4f}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        self._task: TaskID | None = None
        self._pending, self._last = 0, 0.0
        self._sum, self._count = 0.0, 0
        self._refresh()

    def _refresh(self, with_bar: bool = True) -> None:
        table = epoch_table(self._rows, self._title)
        self._live.update(Group(table, self._bar) if with_bar else table, refresh=True)

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task("train", total=steps, epoch=epoch, loss=float("nan"))
        self._pending, self._sum, self._count = 0, 0.0, 0

    def step(self, loss: float) -> None:
        # A step takes ~0.2 ms; redrawing the bar for each one would cost more than training.
        self._pending += 1
        self._sum, self._count = self._sum + loss, self._count + 1
        now = time.monotonic()
        if self._task is not None and now - self._last >= 0.1:
            mean = self._sum / self._count
            self._bar.update(self._task, advance=self._pending, loss=mean)
            self._pending, self._last = 0, now

    def end_epoch(self, result: EpochResult) -> None:
        self._rows.append(result)
        self._refresh()

    def close(self) -> None:
        self._refresh(with_bar=False)


@contextmanager
def train_display(console: Console, title: str, epochs: int) -> Iterator[TrainDisplay]:
    """A `TrainDisplay` of a run of `epochs` epochs live on `console`; the final epoch table
    stays on screen."""
    try:
        with Live(console=console, refresh_per_second=8, transient=False) as live:
            display = TrainDisplay(live, title, epochs)
            try:
                yield display
            finally:
                display.close()
    finally:
        if not console.is_terminal:
            console.line()  # Live leaves its last frame without a newline outside a terminal


def train_summary(result: TrainResult) -> Text:
    """Final validation accuracy (and loss) of a finished run, the training loss per epoch
    as a sparkline, and the BLAS thread policy it ran under."""
    last = result.epochs[-1]
    return Text.from_markup(
        f"valid accuracy [bold]{last.valid_accuracy:.2%}[/] after {_count(last.epoch, 'epoch')} "
        f"(valid loss {last.valid_loss:.4f}, {sum(e.seconds for e in result.epochs):.1f} s), "
        f"loss {sparkline([e.train_loss for e in result.epochs])}\n"
        f"ran on {result.threads.describe()} (see --threads)"
    )


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One block character per value, its height the value's place between the least and the
    greatest (all the lowest when they are equal; '?' for NaN or inf)."""
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    span = (high - low) or 1.0
    return "".join(
        SPARKS[round((v - low) / span * (len(SPARKS) - 1))] if v in finite else "?" for v in values
    )


def chance_warning(result: TrainResult) -> Text:
    """The warning for a run that ended at about chance accuracy, with a rate to try."""
    lr = result.config.lr
    return Text.from_markup(
        f"[bold yellow]warning:[/] valid accuracy {result.valid_accuracy:.1%} is about chance "
        f"(10% for ten digits): the net learned nothing; the learning rate {lr:g} is probably "
        f"too large, try a smaller --lr such as {lr / 10:g}"
    )


# ----------------------------------------------------------------------------- gradcheck


def gradcheck_table(result: GradCheckResult) -> Group:
    """One table of every check (narrower on a narrow terminal: `render_narrow`), the
    tolerance rules, and a verdict line."""
    table = Responsive(
        lambda: _gradcheck_wide(result), lambda: render_narrow.gradcheck(result, _status)
    )
    rules = Text("\n".join(f"tolerance, {k}: {v}" for k, v in result.rules.items()), style="dim")
    n_bad = len(result.failures())
    verdict = Text.from_markup(
        f"[bold green]all {len(result.rows)} checks pass[/]"
        if result.ok
        else f"[bold red]{n_bad} of {len(result.rows)} checks FAIL[/]"
    )
    return Group(table, rules, verdict)


def _gradcheck_wide(result: GradCheckResult) -> Table:
    cfg = result.config
    table = Table(
        title=f"Gradient check: {', '.join(cfg.strategies)} ({cfg.net().describe()}, "
        f"{result.n_rows:,} rows; finite differences on {result.n_fd_rows:,})"
    )
    for col in (
        "strategy",
        "parameter",
        "shape",
        "reference",
        "max abs err",
        "max rel err",
        "worst index",
        "value",
        "ref value",
        "status",
    ):
        right = "err" in col or "value" in col
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for r in result.rows:
        if r.reference == TESTSAME:  # shapes and dtypes, not values
            cells = ("", r.reference, "", "", r.note, "", "")
        else:
            cells = (
                _shape(r.shape),
                r.reference,
                _g(r.max_abs_error),
                _g(r.max_rel_error),
                str(list(r.worst_index)),
                f"{r.value:.6g}",
                f"{r.ref_value:.6g}",
            )
        kinks = f" ({_count(r.kinks, 'kink')})" if r.kinks else ""
        table.add_row(r.strategy, r.parameter, *cells, _status(r.passed) + kinks)
    return table


# ----------------------------------------------------------------------------- bench


def bench_table(result: BenchResult) -> Responsive:
    """Per implementation and phase: average, min, max and median ms, the median's ratio to the
    GEMM reference and to the fastest, GFLOP/s and peak numpy memory (on a narrow terminal,
    one narrower table per phase: `render_narrow`)."""
    return Responsive(
        lambda: _bench_wide(result), lambda: render_narrow.bench(result, _bench_order)
    )


def _bench_order(t: Timing) -> tuple[int, float]:
    return (_PHASE_ORDER.get(t.phase, 9), t.ratio)


def _bench_wide(result: BenchResult) -> Group:
    cfg = result.config
    table = Table(
        title=f"Timings, {_count(cfg.repeat, 'run')} after {cfg.warmup} warm-up "
        f"({cfg.net(result.sizes[0]).describe()}, {result.n_rows:,} rows; "
        f"{result.blas}, {result.threads.describe()})"
    )
    for col in (
        "implementation",
        "pass",
        "average ms",
        "min ms",
        "max ms",
        "median ms",
        "vs gemm",
        "vs fastest",
        "GFLOP/s",
        "peak MB",
    ):
        table.add_column(col, justify="left" if col in ("implementation", "pass") else "right")
    previous = None
    for t in sorted(result.timings, key=_bench_order):
        if previous is not None and t.phase != previous:
            table.add_section()
        previous = t.phase
        table.add_row(
            t.implementation,
            t.phase,
            _ms(t.mean_ms),
            _ms(t.min_ms),
            _ms(t.max_ms),
            _ms(t.median_ms),
            *render_narrow.ratio_cells(t),
        )
    return Group(table, *render_narrow.bench_notes(result))


_PHASE_ORDER = {
    "forward": 0,
    "fwd+bwd all": 1,
    "fwd+bwd weights": 2,
    "batch step": 3,
    "train epoch": 4,
    "train epoch (one core busy)": 5,
}


_ms = render_narrow.ms
_shape = render_narrow.shape_text
