"""User and usage errors of every command: one line on stderr, no traceback, and one exit
code rule: 2 for a bad value (whether typer or the core finds it), 1 for anything else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run

# A value fcgrad cannot use exits 2 whoever finds it: the core (these) or the parser (below).
BAD_VALUES = [
    (["train", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--lr", "-1"], "--lr must be a positive number"),
    (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["gradcheck", "--rows", "0"], "--rows must be at least 1"),
    (["bench", "--repeat", "0"], "--repeat must be at least 1"),
    (["train", "--hidden", "0"], "--hidden sizes must be at least 1"),
    (
        ["train", "--optimizer", "momentum", "--momentum", "1"],
        "--momentum must be at least 0 and below 1",
    ),
    (["train", "--optimizer", "adam", "--lr", "nan"], "--lr must be a positive number"),
    (["train", "--threads", "0"], "--threads must be from 1 to 1,024, got 0"),
    (["train", "--threads", "1025"], "--threads must be from 1 to 1,024, got 1025"),
    (["bench", "--threads", "-2"], "--threads must be from 1 to 1,024, got -2"),
    (["gradcheck", "--threads", "0"], "--threads must be from 1 to 1,024, got 0"),
    (["download", "mnist", "--mirror", "ftp://example.invalid/"], "ftp://example.invalid/"),
    (["download", "mnist", "--no-default-mirrors"], "no MNIST mirrors to download from"),
    (["download", "mnist", "--mirror", ""], "empty MNIST mirror"),
    (["download", "mnist", "--mirror", "http://[::1"], "bad MNIST mirror"),
    (["download", "mnist", "--mirror", "/", "--retries", "-1"], "--retries must be 0 to 100"),
    (["download", "mnist", "--mirror", "/", "--backoff", "nan"], "--backoff must be 0 to 3600"),
    (["download", "mnist", "--mirror", "/", "--timeout", "0"], "--timeout must be in (0, 3600]"),
    (["download", "mnist", "--mirror", "/", "--timeout", "1e10"], "--timeout must be in (0, 3600]"),
    (["download", "mnist", "--mirror", "/", "--timeout", "inf"], "--timeout must be in (0, 3600]"),
    (["download", "mnist", "--mirror", "/", "--retries", "5000"], "--retries must be 0 to 100"),
    (["download", "mnist", "--mirror", "/", "--backoff", "inf"], "--backoff must be 0 to 3600"),
]

# Good values the world then disagrees with: a missing data set, a folder that isn't there.
USER_ERRORS = [
    (["normalize", "--no-download"], "run `fcgrad download mnist --data-dir "),
    (["train", "--save", "/nonexistent-dir/w.npz"], "folder /nonexistent-dir does not exist"),
]


def one_error_line(result: Any, message: str) -> None:
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_value_the_core_finds_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(*args, "--data-dir", tmp_path / "empty")
    assert result.exit_code == 2, result.output
    one_error_line(result, message)


@pytest.mark.parametrize(
    ("args", "message"), USER_ERRORS, ids=[" ".join(a) for a, _ in USER_ERRORS]
)
def test_user_error_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, "--data-dir", tmp_path / "empty")
    assert result.exit_code == 1, result.output
    one_error_line(result, message)


# Every file option, given a file of the wrong kind. A directory was the parser's usage
# error (exit 2) and a FIFO the core's (exit 1); README says a file of the wrong kind is 1.
FILE_OPTIONS = [
    ["evaluate"],
    ["predict"],
    ["train", "--resume"],
    ["train", "--save"],
    ["normalize", "--output"],
    ["gradcheck", "--function", "numpy:sum", "--inputs"],
]
KINDS = {"directory": "a directory", "fifo": "a FIFO (a named pipe)", "device": "a device"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("args", FILE_OPTIONS, ids=[" ".join(a) for a in FILE_OPTIONS])
def test_a_file_of_the_wrong_kind_is_one_line_naming_it_and_exit_1(
    tmp_path: Path, args: list[str], kind: str
) -> None:
    path = tmp_path / "w.npz"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path(os.devnull)
    result = run(*args, path, "--data-dir", tmp_path / "empty", "--no-download")
    assert result.exit_code == 1, result.output
    one_error_line(result, f"{path} is {KINDS[kind]}, not a regular file")


INPUT_OPTIONS = [a for a in FILE_OPTIONS if a[-1] not in ("--save", "--output")]


@pytest.mark.parametrize("args", INPUT_OPTIONS, ids=[" ".join(a) for a in INPUT_OPTIONS])
def test_an_input_file_that_is_not_there_is_the_parsers_usage_error(
    tmp_path: Path, args: list[str]
) -> None:
    """Each the same: `--inputs` alone was the core's error, exit 1."""
    result = run(*args, tmp_path / "missing.npz", "--data-dir", tmp_path / "empty")
    assert result.exit_code == 2, result.output
    one_error_line(result, "missing.npz' does not exist.")


def test_one_rule_for_a_negative_seed_and_zero_epochs() -> None:
    """The issue's example: the parser refuses --seed -1, the core --epochs 0; both exit 2."""
    by_parser, by_core = run("train", "--seed", "-1"), run("train", "--epochs", "0")
    assert by_parser.exit_code == by_core.exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--strategy", "adam"],
        ["train", "--loss", "hinge"],
        ["train", "--activation", "swish"],
        ["train", "--optimizer", "lbfgs"],
        ["gradcheck", "--activation", "gelu"],
        ["download", "cifar"],
        ["bench", "--repeat", "x"],
        ["train", "--seed", "-1"],
        ["gradcheck", "--seed", "-3"],
        ["train", "--momentum", "0.5"],  # sgd, the default, has no momentum to set
        ["train", "--optimizer", "adam", "--momentum", "0.5"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()  # one line, not a framed usage box
    assert line.startswith("error: ") and "--help" in line


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = run("normalize", "--no-download", "--data-dir", tmp_path / "file")
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["download", "mnist", "--no-default-mirrors", "--mirror", "."],
            "cannot create /proc/fcgrad/mnist",
        ),
        (
            ["train", "--resume", str(Path(__file__).resolve().parents[2] / "pyproject.toml")],
            "is not an fcgrad checkpoint",
        ),
    ],
)
def test_unwritable_data_dir_and_a_bad_checkpoint_are_one_line_errors(
    args: list[str], message: str
) -> None:
    result = run(*args, "--data-dir", "/proc/fcgrad")  # /proc: no folder can be made there
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["train", "--resume"], ["evaluate"], ["predict"]])
def test_an_empty_checkpoint_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    """Issue #13: an empty file said "interrupted" and exited 130."""
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    result = run(*command, str(empty), "--data-dir", tmp_path / "data")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {empty} is not an fcgrad checkpoint"), line
    assert "interrupted" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["lesson", "--repeat", "0"], "error: --repeat must be at least 1 (see"),
        (["train", "--seed", "-1"], "error: --seed must be at least 0 (see"),
        (["download"], "error: Missing argument 'NAME'. Choose from: mnist (see"),
    ],
)
def test_the_parsers_errors_are_one_line_in_the_cores_words(args: list[str], line: str) -> None:
    """typer says "Input should be greater than or equal to 1" where the core says "must be
    at least 1", and lists choices on lines of their own."""
    result = run(*args)
    assert result.exit_code == 2
    (got,) = result.stderr.strip().splitlines()
    assert got.startswith(line), got


@pytest.mark.parametrize("where", ["loop", "long"])
def test_a_save_path_that_cannot_be_followed_is_refused_before_training(
    tmp_path: Path, where: str
) -> None:
    """A --save into a symlink loop, or a name too long for the file system, is one short
    line before any work (no data is needed to find it)."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    target = tmp_path / "a" / "m.npz" if where == "loop" else tmp_path / ("m" * 300 + ".npz")
    result = run("train", "--save", str(target), "--no-download", "--data-dir", tmp_path / "no")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write ") and len(line) < 250, line
    assert ("symbolic links" if where == "loop" else "File name too long") in line


def test_a_local_mirror_path_too_long_for_the_system_is_one_line(tmp_path: Path) -> None:
    result = run("download", "mnist", "--mirror", "/" + "m" * 5000, "--data-dir", tmp_path / "d")
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and len(line) < 400


def test_an_unusable_plot_folder_is_refused_before_training(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = run(
        "train", "--plot", tmp_path / "file" / "pics", "--no-download", "--data-dir", tmp_path
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot make the picture folder")  # not "MNIST missing"


@pytest.mark.parametrize("command", ["normalize", "download mnist", "train"])
def test_a_data_dir_the_system_cannot_look_at_is_one_line(command: str, tmp_path: Path) -> None:
    """A name too long for the file system (a helper's report on #13: OSError's traceback
    from the first look for the MNIST files)."""
    result = run(*command.split(), "--data-dir", tmp_path / ("a" * 300))
    assert result.exit_code == 2, result.output
    one_error_line(result, "cannot be used: File name too long")


def test_installing_completion_where_it_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """typer's own write (into the shell's files under HOME) failing was a traceback (a
    helper's report on #13: a full HOME); here HOME is a file, so nothing under it can
    be written."""
    home = tmp_path / "home"
    home.write_text("")
    result = run("--install-completion", "bash", env={"HOME": str(home), "SHELL": "/bin/bash"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    one_error_line(result, f": {home}")


def test_a_long_path_in_a_parsers_message_is_shown_by_its_ends(tmp_path: Path) -> None:
    """click's own messages printed a 3,000-character path whole, where fcgrad's show its
    first and last characters (`fcgrad.fileio.short_path`)."""
    missing = tmp_path / ("b" * 3000 + ".npz")
    result = run("train", "--resume", missing)
    assert result.exit_code == 2
    one_error_line(result, "bbbb.npz' does not exist.")
    assert "bbb...bbb" in result.stderr and len(result.stderr) < 300


def test_a_long_data_dir_is_shown_whole_only_in_the_command_to_paste(tmp_path: Path) -> None:
    """MNIST missing from a 400-character data dir: the path once by its ends, and whole
    in the download command the line ends with (it was whole twice)."""
    data_dir = tmp_path / ("d" * 200) / ("d" * 200)
    result = run("normalize", "--no-download", "--data-dir", data_dir)
    assert result.exit_code == 1
    one_error_line(result, f"; run `fcgrad download mnist --data-dir {data_dir}`")
    assert result.stderr.count(str(data_dir)) == 1 and "ddd...ddd" in result.stderr


def test_completion_install_onto_a_full_disk_leaves_the_shells_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer rewrote ~/.bashrc in place: on a full disk it was left as half of itself
    and half a `source` line (a helper's report on #13). Here every write of a file
    named .bashrc* stops half way with ENOSPC, as a full disk does."""
    import errno
    import pathlib

    home = tmp_path / "home"
    home.mkdir()
    run("--install-completion", "bash", env={"HOME": str(home), "SHELL": "/bin/bash"})
    before = (home / ".bashrc").read_text()
    assert f"source '{home / '.bash_completions'}/" in before  # it installs
    real = pathlib.Path.write_text

    def half_then_full(self: pathlib.Path, data: str, *args: Any, **kw: Any) -> int:
        if self.name.startswith((".bashrc", "..bashrc")):
            real(self, data[: len(data) // 2], *args, **kw)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kw)

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_full)
    result = run("--install-completion", "bash", env={"HOME": str(home), "SHELL": "/bin/bash"})
    assert result.exit_code == 1
    one_error_line(result, f"cannot write {home / '.bashrc'}: No space left on device")
    assert (home / ".bashrc").read_text() == before and sorted(os.listdir(home)) == [
        ".bash_completions",
        ".bashrc",
    ]
