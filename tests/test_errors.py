"""`fcgrad.errors.one_line`: what every error line goes through before it is printed."""

from __future__ import annotations

from fcgrad.errors import MAX_LINE, one_line


def test_control_characters_are_escaped() -> None:
    assert one_line("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert one_line("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert one_line("grüße, 3·4 …") == "grüße, 3·4 …"  # printable is kept as it is


def test_a_long_text_keeps_its_two_ends() -> None:
    text = "<" + "x" * 5000 + ">"
    got = one_line(text)
    assert len(got) == MAX_LINE - 1 and got.startswith("<xx") and got.endswith("xx>")
    assert got == text[:498] + "..." + text[-498:]
    assert one_line("abcdefghijkl", 9) == "abc...jkl"
    assert one_line("x" * MAX_LINE) == "x" * MAX_LINE  # up to the limit: whole
