"""README.md stays true: its Python example runs, and CI runs the commands it gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    net, autodiff, checking, replaying = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    exec(compile(net, "README.md", "exec"), {})
    (line,) = capsys.readouterr().out.splitlines()
    losses = line.removeprefix("784-64-32-10 tanh, cross-entropy ")
    assert line != losses and len(set(losses.strip("[]").split(", "))) == 1  # one loss, 3 ways
    exec(compile(autodiff, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "[0.5 1.  1.5 2. ]"
    assert printed[1].startswith("-3.05017097")
    assert printed[3].endswith("(784, 50) (784, 50)")
    exec(compile(checking, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["True [12, 20]", "True 1", "True"]
    exec(compile(replaying, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "1 float32"
    assert printed[1].strip().startswith("v[") and printed[1].endswith("# matmul")


def test_ci_runs_the_readme_setup_and_test_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    setup = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]'"
    assert setup in README and setup in ci
    assert "\npython -m pytest\n" in README and "\npython -m pytest\n" in ci
