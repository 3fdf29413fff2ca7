"""A core ConfigError names its parameter as the core spells it (`batch_size`, with
`param="batch_size"`); the CLI shows the running command's flag for it (`--batch-size`),
as one line on stderr, exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from fcgrad.bench.timing import BenchConfig
from fcgrad.checking.net_gradcheck import GradCheckConfig
from fcgrad.cli.app import app, flag_for, with_flag
from fcgrad.errors import ConfigError
from fcgrad.training.train import TrainConfig

runner = CliRunner()
COMMANDS = get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "param", "flag"),
    [
        ("train", "batch_size", "--batch-size"),
        ("train", "lr", "--lr"),
        ("train", "data_dir", "--data-dir"),
        ("gradcheck", "fd_rows", "--fd-rows"),
        ("gradcheck", "strategies", "--strategy"),  # named as GradCheckConfig names it
        ("gradcheck", "strategy", "--strategy"),  # as strategies.get names it: no such option
        ("bench", "strategies", "--strategy"),
        ("bench", "train_epoch", "--train-epoch"),
        ("download", "mirrors", "--mirror"),
        ("download", "retries", "--retries"),
        ("train", "no_such_thing", "--no-such-thing"),  # no option of that name
        ("download", "dataset", "--dataset"),  # an argument, not an option
    ],
)
def test_flag_for_a_core_parameter(command: str, param: str, flag: str) -> None:
    assert flag_for(param, COMMANDS[command]) == flag


def test_flag_for_outside_a_command_is_the_name_with_dashes() -> None:
    assert flag_for("fd_rows", None) == "--fd-rows"


@pytest.mark.parametrize(
    ("error", "command", "shown"),
    [
        (
            ConfigError("batch_size must be at least 1, got 0", param="batch_size"),
            "train",
            "--batch-size must be at least 1, got 0",
        ),
        (
            ConfigError("fd_rows must be at least 1, got 0", param="fd_rows"),
            "gradcheck",
            "--fd-rows must be at least 1, got 0",
        ),
        (  # only the first occurrence: the one the message begins with
            ConfigError("rows 70000 is more than the 60,000 rows", param="rows"),
            "gradcheck",
            "--rows 70000 is more than the 60,000 rows",
        ),
        (  # a message that names the flag already stays as it is
            ConfigError("--rows 70000 is more than the 60,000 rows", param="rows"),
            "gradcheck",
            "--rows 70000 is more than the 60,000 rows",
        ),
        (  # a name in a closing hint, not at the start: its last occurrence
            ConfigError(
                "no MNIST mirrors to download from; give at least one in mirrors (a URL)",
                param="mirrors",
            ),
            "download",
            "no MNIST mirrors to download from; give at least one in --mirror (a URL)",
        ),
        (  # only the name as a word of its own: not inside a value or another name
            ConfigError(
                "bad MNIST mirror 'http://h/mirrors/' (mirrors): not a URL", param="mirrors"
            ),
            "download",
            "bad MNIST mirror 'http://h/mirrors/' (--mirror): not a URL",
        ),
        (
            ConfigError("rows must be at most fd_rows, got 5", param="rows"),
            "gradcheck",
            "--rows must be at most fd_rows, got 5",
        ),
        (
            ConfigError("no MNIST mirrors to download from", param=None),
            "download",
            "no MNIST mirrors to download from",
        ),
    ],
)
def test_with_flag_puts_the_flag_for_the_parameter(
    error: ConfigError, command: str, shown: str
) -> None:
    assert with_flag(error, COMMANDS[command]) == shown


def _raises(param: str, message: str) -> Any:
    def validate(self: object) -> None:
        raise ConfigError(message, param=param)

    return validate


@pytest.mark.parametrize(
    ("config", "args", "param", "message", "shown"),
    [
        (
            TrainConfig,
            ["train"],
            "batch_size",
            "batch_size must be at least 1, got 0",
            "--batch-size must be at least 1, got 0",
        ),
        (TrainConfig, ["train"], "lr", "lr must be a positive number", "--lr must be a positive"),
        (
            GradCheckConfig,
            ["gradcheck"],
            "fd_rows",
            "fd_rows must be at least 1, got 0",
            "--fd-rows must be at least 1, got 0",
        ),
        (
            BenchConfig,
            ["bench"],
            "strategies",
            "strategies: unknown strategy 'x'",
            "--strategy: unknown strategy 'x'",
        ),
    ],
    ids=["train-batch_size", "train-lr", "gradcheck-fd_rows", "bench-strategies"],
)
def test_a_core_config_error_shows_the_commands_flag(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config: type,
    args: list[str],
    param: str,
    message: str,
    shown: str,
) -> None:
    monkeypatch.setattr(config, "validate", _raises(param, message))
    result = runner.invoke(app, [*args, "--no-download", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {shown}")  # the flag where the core put the name


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["train", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["gradcheck", "--fd-rows", "0"], "--fd-rows must be at least 1, got 0"),
        (["bench", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ],
)
def test_the_cores_own_config_errors_show_the_flag(
    tmp_path: Path, args: list[str], shown: str
) -> None:
    result = runner.invoke(app, [*args, "--no-download", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {shown} (see ")  # the help hint, as the parser's errors
    assert line.endswith(f" {args[0]} --help)")


def test_a_bad_mirror_is_named_by_its_flag(tmp_path: Path) -> None:
    args = ["download", "mnist", "--mirror", "ftp://example.invalid/"]
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "'ftp://example.invalid/' (--mirror)" in line
    assert "user_mirrors" not in line and "user-mirrors" not in line
