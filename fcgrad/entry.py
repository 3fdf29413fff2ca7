"""The `fcgrad` console script: Ctrl-C while the CLI's modules are still loading, or while
typer builds the command, is one line, exit 130, not a traceback from inside an import.

The console script imports this module before any handler can run, so it and
`fcgrad/__init__.py` import nothing but `sys` and `importlib` (which Python has loaded
already): what is left of that window is Python's own start.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI, then run it (`--version` alone needs none of it)."""
    if sys.argv[1:] == ["--version"]:
        from fcgrad import __version__

        print(f"fcgrad {__version__}")
        return
    try:
        from fcgrad.cli.app import app

        app()  # (a command catches its own Ctrl-C; this one comes before or after it)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
