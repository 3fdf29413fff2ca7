"""The `fcgrad` console script: Ctrl-C while the CLI's modules are still loading is one line,
exit 130, not a traceback from inside an import."""

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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    app()
