"""Faults to inject: a full disk.

`full_disk(tmp_path, monkeypatch)` is a folder where writing more than a few KB fails with
ENOSPC: a real 16 KB tmpfs where this process may mount one (root, as on CI), otherwise
numpy's savez made to fail there with ENOSPC, as a full disk makes it (the fault is
injected only for files inside the folder; every other write works).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@contextlib.contextmanager
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = os.geteuid() == 0 and _mount_tmpfs(folder)
    if not mounted:
        monkeypatch.setattr(np, "savez", enospc_savez(folder))
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)


def enospc_savez(folder: Path) -> Any:
    """numpy's savez, failing with ENOSPC (as a full disk does) for files inside `folder`."""
    real, full = np.savez, folder.resolve()

    def savez(file: Any, *args: Any, **kw: Any) -> None:
        if Path(os.fspath(file)).resolve().is_relative_to(full):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(file))
        real(file, *args, **kw)

    return savez


def _mount_tmpfs(folder: Path) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
