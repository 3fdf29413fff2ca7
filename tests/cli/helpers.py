"""Shared helpers of the CLI tests: the app run in process through Typer's test runner."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from fcgrad.cli.app import app

runner = CliRunner()


def run(*args: str, **kw: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args], **kw)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
