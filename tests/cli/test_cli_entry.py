"""The CLI's entry points: --help in process, the console script and `python -m fcgrad`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import run

COMMANDS = (
    "download",
    "normalize",
    "train",
    "gradcheck",
    "bench",
    "evaluate",
    "predict",
    "lesson",
)


def test_help_lists_the_five_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_version_and_short_help() -> None:
    from fcgrad import __version__

    version = run("--version")
    assert version.exit_code == 0 and version.stdout == f"fcgrad {__version__}\n"
    for args in (["-h"], ["train", "-h"]):
        short, long = run(*args), run(*args[:-1], "--help")
        assert short.exit_code == 0 and short.stdout == long.stdout


@pytest.mark.parametrize("columns", ["80", "120"])
@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_shows_no_type_artefacts(command: list[str], columns: str) -> None:
    """Flags show no `<bool>`, repeatable options a placeholder, not `<list[int]>`; every
    line fits and no help text is cut to '…'."""
    result = run(*command, "--help", env={"COLUMNS": columns})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout and "list[" not in result.stdout
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= int(columns) and not any("…" in line for line in lines)


def test_a_choice_shows_a_short_placeholder_and_its_choices_in_the_help() -> None:
    """`<relu|tanh|sigmoid|leaky-relu>` squeezed the help into a narrow column at 80 columns
    (and cut `$FCGRAD_MNIST_MIRRORS` to '…'): choices are listed in the help text instead."""
    shown = run("train", "--help", env={"COLUMNS": "80"}).stdout
    (line,) = [line for line in shown.splitlines() if "--activation" in line]
    assert line.split()[1:3] == ["--activation", "NAME"]
    text = " ".join(shown.replace("│", " ").split())
    assert "<relu|" not in text and "One of: relu, tanh, sigmoid, leaky-relu." in text
    assert "$FCGRAD_MNIST_MIRRORS)" in text


def test_a_bad_choice_is_one_clean_line() -> None:
    result = run("train", "--loss", "hinge")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Invalid value for '--loss': 'hinge' is not one of")
    assert "Value error" not in line


def test_help_keeps_square_brackets_that_rich_would_take_for_markup() -> None:
    result = run("bench", "--help", env={"COLUMNS": "200"})
    assert "pip install 'fcgrad[peers]'" in result.stdout


@pytest.mark.parametrize(
    "argv", [["fcgrad"], [sys.executable, "-m", "fcgrad"]], ids=["script", "module"]
)
def test_installed_entry_points(argv: list[str]) -> None:
    if argv == ["fcgrad"]:
        script = Path(sys.executable).parent / "fcgrad"
        argv = [str(script if script.exists() else shutil.which("fcgrad"))]
    done = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert all(c in done.stdout for c in COMMANDS)


def test_json_has_no_bare_nan() -> None:
    from fcgrad.jsonio import finite

    got = finite({"a": [float("nan"), 1.0], "b": float("inf"), "c": "x"})
    assert got == {"a": [None, 1.0], "b": None, "c": "x"}


def _interrupted_in(probe: str) -> None:
    """Run Python code `probe` in a new process: it must end as a Ctrl-C does, one line."""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 130 and done.stderr == "interrupted\n", done.stderr


def test_the_command_starts_without_numpy_so_ctrl_c_at_start_is_caught() -> None:
    """`import fcgrad.entry` (what the console script runs first, outside any handler)
    loads no numpy; a Ctrl-C while the CLI then loads is one line and exit 130. The
    interrupt is raised exactly as the CLI's module is imported (an event, not a sleep)."""
    probe = (
        "import sys\n"
        "import fcgrad.entry\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded before the handler'\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'fcgrad.cli.app':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['fcgrad', 'train']\n"
        "fcgrad.entry.main()\n"
    )
    _interrupted_in(probe)


def test_the_console_script_imports_nothing_before_its_handler() -> None:
    """What the console script imports before `main` can catch Ctrl-C is fcgrad's three
    small modules alone, which import only what Python has loaded (a helper's 120 real
    SIGINTs at 0.03-0.5 s found two tracebacks inside `typing`, which `fcgrad/__init__.py`
    imported)."""
    probe = (
        "import sys\nbefore = set(sys.modules)\nimport fcgrad.entry\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['fcgrad', 'fcgrad.entry', 'fcgrad.interrupts']"


def test_ctrl_c_while_typer_builds_the_command_is_one_line() -> None:
    """A Ctrl-C after the CLI is imported but before a command runs (typer building the
    command from its signatures) is one line and exit 130, not a traceback."""
    probe = (
        "import sys\n"
        "import fcgrad.entry, fcgrad.cli.app\n"
        "def app():\n"
        "    raise KeyboardInterrupt\n"
        "fcgrad.cli.app.app = app\n"
        "sys.argv = ['fcgrad', 'train']\n"
        "fcgrad.entry.main()\n"
    )
    _interrupted_in(probe)


def test_the_public_names_load_on_first_use() -> None:
    import fcgrad

    for name in fcgrad.__all__:
        assert getattr(fcgrad, name) is not None
    assert set(fcgrad.__all__) == set(fcgrad._WHERE) and set(fcgrad.__all__) <= set(dir(fcgrad))
    import fcgrad.engine.ops
    from fcgrad.ops import relu

    assert fcgrad.ops is fcgrad.engine.ops and relu is fcgrad.engine.ops.relu
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fcgrad.nope  # noqa: B018


def test_version_alone_loads_no_cli() -> None:
    probe = (
        "import sys\nimport fcgrad.entry\nsys.argv = ['fcgrad', '--version']\n"
        "fcgrad.entry.main()\nassert 'numpy' not in sys.modules and 'typer' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("fcgrad "), done.stderr
