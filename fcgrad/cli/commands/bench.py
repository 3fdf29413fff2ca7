"""`fcgrad bench`: time each strategy's passes (and peers', and a training epoch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fcgrad.bench.timing import BenchConfig, bench
from fcgrad.cli import options as opt
from fcgrad.cli.app import emit, err, user_errors
from fcgrad.cli.commands.data import prepared, source
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss


@user_errors
def bench_cmd(
    repeat: Annotated[int, typer.Option("--repeat", help="Timed runs per strategy and pass.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 1,
    rows: opt.Rows = None,
    strategies: opt.StrategySet = [opt.ALL],  # noqa: B006
    loss: opt.LossOpt = Loss.mse,
    hidden: opt.Hidden = [50],  # noqa: B006
    activation: opt.ActivationOpt = Activation.relu,
    seed: opt.Seed = 0,
    data_dir: opt.DataDir = Path("data"),
    mirrors: opt.Mirrors = None,
    no_default_mirrors: opt.NoDefaultMirrors = False,
    no_download: opt.NoDownload = False,
    json_: opt.Json = False,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            metavar="LIBRARY",
            help="Also time these libraries, e.g. torch,jax,autograd "
            "(pip install 'fcgrad\\[peers]').",
            show_default=False,
        ),
    ] = None,
    train_epoch: Annotated[
        bool,
        typer.Option(
            "--train-epoch",
            help="Also time training at --batch-size: single steps, and SGD epochs beside "
            "their GEMM floor (and torch's and jax's, with --compare), quiet and with one "
            "core kept busy by a helper process.",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Rows per step for --train-epoch.")
    ] = 64,
    threads: opt.Threads = None,
) -> None:
    """Time each strategy's forward and forward+backward pass on the normalized training set."""
    from fcgrad.cli import render

    names = tuple(p.strip() for c in compare or [] for p in c.split(",") if p.strip())
    config = BenchConfig(
        opt.strategy_names(strategies),
        loss,
        tuple(hidden),
        repeat,
        warmup,
        rows,
        seed,
        names,
        train_epoch,
        batch_size,
        activation,
        threads,
    )
    config.validate()
    x_train, y_train, *_ = prepared(
        source(data_dir, mirrors, no_default_mirrors, no_download), json_
    )
    with render.steps_bar(err, enabled=not json_) as bar:
        result = bench(x_train, y_train, config, bar)
    emit(result, json_, render.bench_table)
