"""What a user sees on a real terminal 80 and 120 columns wide (a pty read back through a
terminal emulator, `tests.cli.terminal`): every line fits, no number or status is cut to
'…', progress is shown while the work runs and gone when it ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.terminal import Shown, on_terminal, piped_beside_a_terminal

WIDTHS = [80, 120]


def fits(shown: Shown, columns: int) -> None:
    assert shown.code == 0, shown.text()
    assert max(map(len, shown.lines)) <= columns, shown.text()
    assert max(map(len, shown.frames())) <= columns  # the progress bar's frames too
    assert not any("…" in line for line in shown.lines), shown.text()


def rows_of(shown: Shown, first: tuple[str, ...]) -> list[list[str]]:
    """The table rows (box rules dropped) whose first cell is one of `first`."""
    cells = [line.replace("│", " ").split() for line in shown.lines]
    return [row for row in cells if row and row[0] in first]


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_function_check_on_a_terminal(tmp_path: Path, columns: int) -> None:
    user = tmp_path / "mine.py"
    user.write_text(
        "from fcgrad import ops\n\ndef loss(w, x):\n    return ops.sum(ops.tanh(x @ w))\n"
    )
    shown = on_terminal(
        "gradcheck", "--function", f"{user}:loss", "--shape", "4,3", "--shape", "5,4",
        columns=columns,
    )  # fmt: skip
    fits(shown, columns)
    assert "gradient check passed" in shown.text() and "args[1]" in shown.text()


def test_piped_output_read_on_a_terminal_fits_it_and_a_log_gets_the_wide_table(
    tmp_path: Path,
) -> None:
    """`fcgrad gradcheck | less` on an 80-column terminal: the tables were drawn 140 wide
    for any pipe, and folded on the screen (a helper's report on #13). A log, with no
    terminal on any stream, still gets room for the wide table."""
    user = tmp_path / "mine.py"
    user.write_text("from fcgrad import ops\n\ndef loss(w):\n    return ops.sum(ops.tanh(w))\n")
    args = ("gradcheck", "--function", f"{user}:loss", "--shape", "4,3")
    seen = piped_beside_a_terminal(*args, columns=80).splitlines()
    assert max(map(len, seen)) <= 80 and "gradient check passed" in seen[-1], seen
    logged = piped_beside_a_terminal(*args, columns=None).splitlines()
    assert max(map(len, logged)) > 80 and "gradient check passed" in logged[-1], logged


@pytest.mark.parametrize("columns", WIDTHS)
def test_gradcheck_on_a_terminal(mnist_data_dir: Path, columns: int) -> None:
    args = ["--rows", "2000", "--fd-rows", "20", "--data-dir", str(mnist_data_dir)]
    shown = on_terminal("gradcheck", *args, columns=columns)
    fits(shown, columns)
    rows = rows_of(shown, ("manual", "vwc", "tape"))
    assert len(rows) == 33 and all(row[-1] == "pass" for row in rows)  # the status column
    assert any(cell[0].isdigit() and "e-" in cell for row in rows for cell in row)  # rel err
    assert shown.lines[-1] == "all 33 checks pass"
    # progress named the strategy and the check while it ran, and erased itself after
    assert b"tape: central differences of x" in shown.raw
    assert "central differences of" not in shown.text()


@pytest.mark.parametrize("columns", WIDTHS)
def test_bench_on_a_terminal(mnist_data_dir: Path, columns: int) -> None:
    args = ["--repeat", "2", "--rows", "2000", "--train-epoch", "--data-dir", str(mnist_data_dir)]
    shown = on_terminal("bench", *args, columns=columns)
    fits(shown, columns)
    text = shown.text()
    for impl in ("gemm reference", "manual", "vwc", "tape"):
        assert impl in text
    for phase in ("forward", "fwd+bwd all", "fwd+bwd weights", "batch step", "train epoch"):
        assert phase in text
    assert b"manual" in shown.raw and b"elapsed" in shown.raw  # the bar, while it ran
    bars = [frame for frame in shown.frames() if "elapsed" in frame]
    whole = re.compile(r" \d+/\d+ elapsed \d+:\d\d:\d\d left (\d+:\d\d:\d\d|-:--:--)$")
    cut = [frame for frame in bars if not whole.search(frame)]
    assert bars and not cut, cut  # the count and the times are never cut to '…'
    assert "elapsed" not in text
    assert "1 BLAS thread for batch steps" in text.replace("\n", " ")  # in the title
    assert "one core busy" in text


@pytest.mark.parametrize("columns", WIDTHS)
def test_train_on_a_terminal(mnist_data_dir: Path, columns: int) -> None:
    shown = on_terminal(
        "train", "--epochs", "1", "--data-dir", str(mnist_data_dir), columns=columns
    )
    fits(shown, columns)
    assert b"epoch 1/1" in shown.raw and b"mean loss" in shown.raw and b"left" in shown.raw
    assert any(line.lstrip("│ ").startswith("1 ") for line in shown.lines)  # the epoch row
    assert "ran on 1 BLAS thread for batch steps" in shown.text()  # the thread policy


def test_a_long_error_wraps_between_words_on_a_terminal(tmp_path: Path) -> None:
    """Piped, an error is one line (for scripts and logs); on a terminal rich wraps it at
    the terminal's width between words, instead of the terminal cutting words in two."""
    shown = on_terminal("normalize", "--no-download", "--data-dir", str(tmp_path), columns=80)
    assert shown.code == 1 and len(shown.lines) > 1
    assert max(map(len, shown.lines)) <= 80
    words = " ".join(shown.lines).split()
    for name in ("train-images-idx3-ubyte.gz,", "t10k-labels-idx1-ubyte.gz;", "download"):
        assert name in words, shown.text()  # whole words: none was broken across lines
