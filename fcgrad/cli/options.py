"""The options several commands share, as `Annotated` aliases, and the choices they take.

A command's parameter is named as the core names it (`strategies`, `batch_size`), whatever
its flag, so that a core error about it can be shown with the flag (see `app.flag_for`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer

from fcgrad import strategies
from fcgrad.data import DATA_DIR_ENV, MIRRORS_ENV
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss


class Dataset(str, enum.Enum):
    mnist = "mnist"


def _choices(name: str, values: Iterable[str]) -> Any:
    """A str enum with one member per value (named and valued by it), for typer's choices."""
    return enum.Enum(name, [(v, v) for v in values], type=str)


# The strategies' names come from their registry (fcgrad.strategies.STRATEGIES), not a list
# here; to the type checker a choice is the name it stands for (`chosen` turns it into one).
if TYPE_CHECKING:
    Strategy: TypeAlias = str
    StrategyOrAll: TypeAlias = str
else:
    Strategy = _choices("Strategy", strategies.NAMES)
    StrategyOrAll = _choices("StrategyOrAll", (*strategies.NAMES, "all"))


ALL: StrategyOrAll = StrategyOrAll("all")  # defaults, built once
TAPE: Strategy = Strategy("tape")


def chosen(choice: str) -> str:
    """The name a strategy choice stands for."""
    return str(getattr(choice, "value", choice))


DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Data folder; MNIST lives in DATA_DIR/mnist.",
        file_okay=False,
    ),
]
Mirrors = Annotated[
    list[str] | None,
    typer.Option(
        "--mirror",
        metavar="URL|DIR",
        help=f"MNIST mirror URL or local folder, tried first (repeatable; also ${MIRRORS_ENV}).",
        show_default=False,
    ),
]
NoDefaultMirrors = Annotated[
    bool,
    typer.Option(
        "--no-default-mirrors",
        help="Try only --mirror and $FCGRAD_MNIST_MIRRORS, not the built-in internet mirrors.",
    ),
]
NoDownload = Annotated[
    bool,
    typer.Option("--no-download", help="Fail instead of downloading MNIST when it is missing."),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")
]
Seed = Annotated[
    int,
    typer.Option("--seed", min=0, help="Seed of the numpy Generator (init, sampling, shuffles)."),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        metavar="N",
        help="BLAS threads for every matrix product (default: 1 for training's batch "
        "steps, which a second thread barely helps and a busy core stalls; every core for "
        "full-batch passes).",
        show_default=False,
    ),
]
LossOpt = Annotated[
    Loss,
    typer.Option(
        "--loss", help="mse: one output, the digit as target; cross-entropy: ten outputs."
    ),
]
Hidden = Annotated[
    list[int],
    typer.Option("--hidden", metavar="N", help="Hidden layer size (repeat for a deeper net)."),
]
Rows = Annotated[
    int | None,
    typer.Option(
        "--rows", help="Use the first N training rows (default: all 60,000).", show_default=False
    ),
]
StrategySet = Annotated[
    list[StrategyOrAll],
    typer.Option(
        "--strategy",
        metavar="|".join((*strategies.NAMES, "all")),
        help="Strategy to run (repeatable), or all.",
    ),
]


Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="DIR",
        help="Also draw pictures as PNG into this folder (pip install 'fcgrad\\[plot]').",
        file_okay=False,
        show_default=False,
    ),
]
ActivationOpt = Annotated[
    Activation,
    typer.Option(
        "--activation",
        help="Between the dense layers; init follows it (kaiming for the relu family, "
        "Glorot for tanh and sigmoid).",
    ),
]


def strategy_names(choices: list[StrategyOrAll]) -> tuple[str, ...]:
    """The strategies chosen with --strategy, in the core's order; all of them for `all`."""
    names = {chosen(c) for c in choices}
    return (
        strategies.NAMES
        if "all" in names or not names
        else tuple(n for n in strategies.NAMES if n in names)
    )
