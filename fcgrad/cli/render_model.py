"""Drawing a trained model's results: its scores on the valid set, and its predictions, with
each digit drawn in the terminal in block characters. Every table fits 80 columns."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fcgrad.training.evaluation import DIGITS, Evaluation, Prediction, Predictions

SHADES = " ░▒▓█"  # pixel intensity 0 .. 1, each drawn two characters wide (a square cell)


def evaluation(result: Evaluation) -> Group:
    """A line with the loss and accuracy, a table of each digit's accuracy, and the
    confusion matrix (rows: true digit; columns: predicted)."""
    head = Text.from_markup(
        f"[bold]{escape(result.model)}[/] ({escape(result.net)}) on {result.rows:,} valid "
        f"images: accuracy [bold]{result.accuracy:.2%}[/], loss {result.loss:.4f}"
    )
    per_class = Table(title="Accuracy per digit")
    per_class.add_column("digit", justify="right")
    per_class.add_column("images", justify="right")
    per_class.add_column("correct", justify="right")
    per_class.add_column("accuracy", justify="right")
    for d in range(DIGITS):
        n = int(result.confusion[d].sum())
        hit = int(result.confusion[d, d])
        per_class.add_row(str(d), f"{n:,}", f"{hit:,}", f"{result.per_class[d]:.2%}")
    confusion = Table(title="Confusion matrix: rows true digit, columns predicted")
    confusion.add_column("", justify="right", style="bold")
    for d in range(DIGITS):
        confusion.add_column(str(d), justify="right")
    for d in range(DIGITS):
        cells = [_cell(int(c), d == j) for j, c in enumerate(result.confusion[d])]
        confusion.add_row(str(d), *cells)
    return Group(head, per_class, confusion)


def _cell(count: int, diagonal: bool) -> str:
    if diagonal:
        return f"[green]{count}[/]"
    return f"[red]{count}[/]" if count else "[dim]·[/]"


def digit_art(image: np.ndarray) -> str:
    """A 28x28 image in [0, 1] as 28 lines of 56 block characters (each pixel two wide)."""
    levels = np.clip(np.rint(image * (len(SHADES) - 1)), 0, len(SHADES) - 1).astype(int)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def predictions(result: Predictions) -> Group:
    """Each image drawn, then its prediction: the true digit when known and the top three
    digits with their probabilities (or, for mse, the net's output)."""
    parts: list[Text | str] = []
    for p in result.predictions:
        parts += [Text(digit_art(p.image)), _verdict(p), ""]
    return Group(*parts[:-1])


def _percent(q: float) -> str:
    """A probability as a percentage: 12.3%; below 0.1% to two digits, 0.087% or 3.1e-07%
    (not a bare 0.0%, nor 8.7e-02%)."""
    return f"{q:.1%}" if q >= 1e-3 or q == 0 else f"{100 * q:.2g}%"


def _verdict(p: Prediction) -> Text:
    truth = "" if p.label is None else f", true digit {p.label}"
    mark = (
        "" if p.label is None else (" [green]right[/]" if p.label == p.digit else " [red]wrong[/]")
    )
    if p.top:
        top = ", ".join(f"{d}: {_percent(q)}" for d, q in p.top)
        detail = f"top 3: {top}"
    else:
        detail = f"the net's output {p.output:.3f}, rounded"
    return Text.from_markup(
        f"{escape(p.source)}: predicted [bold]{p.digit}[/]{truth}{mark} ({detail})"
    )
