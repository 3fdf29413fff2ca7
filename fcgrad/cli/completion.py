"""`--install-completion` that cannot leave a shell's start-up file half-written.

typer installs completion by rewriting the shell's file (`~/.bashrc`, `~/.zshrc`, ...)
in place with `Path.write_text`: on a full disk that truncated `~/.bashrc` to half a
`source` line, which bash then runs as a command (a helper's report on #13). Its
installer names `Path` from its own module, so giving that module a Path whose
`write_text` goes through `fcgrad.fileio.atomic_path` (a temporary renamed when complete,
its mode kept) makes every file it writes whole or untouched. Nothing else changes.
"""

from __future__ import annotations

import pathlib
from typing import Any

from fcgrad.fileio import atomic_path


class AtomicWritePath(type(pathlib.Path())):  # type: ignore[misc]
    """A Path whose `write_text` replaces the file atomically."""

    def write_text(self, data: str, *args: Any, **kwargs: Any) -> int:
        with atomic_path(self) as tmp:
            return pathlib.Path(tmp).write_text(data, *args, **kwargs)


def make_installs_atomic() -> None:
    """Give typer's completion installer AtomicWritePath, where typer has it as 0.29 does
    (a module `typer._completion_shared` naming `pathlib.Path`); else nothing changes."""
    try:
        from typer import _completion_shared
    except ImportError:  # pragma: no cover (another typer: its own writes then)
        return
    if getattr(_completion_shared, "Path", None) is pathlib.Path:
        setattr(_completion_shared, "Path", AtomicWritePath)  # noqa: B010 (not exported)
