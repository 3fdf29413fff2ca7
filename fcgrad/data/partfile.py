"""The ``.NAME.<random>.part`` temp file a download writes to, and its atomic keeping.

The file lives in the destination folder, is held open and locked (flock, where there is
one) while a run writes it, and is fsynced and renamed to its final name only once its
bytes are verified; a transfer that breaks off keeps it for the next attempt to resume.
Errors on our own file raise LocalError: a DataError naming the folder, not a mirror
failure (a full disk says so).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fcgrad.data.idx import CHUNK_BYTES
from fcgrad.errors import DataError, FcgradError
from fcgrad.fileio import make_temp


class LocalError(Exception):
    """Writing or reading our own temp file failed (internal to fcgrad.data): no mirror can
    fix that."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc

    def data_error(self, folder: Path, name: str) -> DataError:
        if self.exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DataError(
                f"no space left on the disk holding {folder} (while writing {name}); "
                "free some space there and run again"
            )
        return DataError(f"cannot write {name} in {folder}: {self.exc.strerror or self.exc}")


def _write_bytes(out: BinaryIO, data: bytes) -> None:
    """Append `data` to the temp file (the one place bytes are written; tests replace it)."""
    out.write(data)


def _lock(fd: int, path: Path) -> bool:
    """Take an exclusive, non-blocking lock on `fd`; False if another run holds it or
    `path` no longer names that file (it was removed or replaced meanwhile)."""
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino) and stat.S_ISREG(mine.st_mode)


def _part_files(folder: Path, name: str) -> list[Path]:
    """The ``.NAME.*.part`` files in `folder` (left by an interrupted run)."""
    prefix = f".{name}."
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if n.startswith(prefix) and n.endswith(".part"))


def _open_locked(path: Path) -> int | None:
    """An fd on the part file `path`, locked; None if it is in use or gone."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    if _lock(fd, path):
        return fd
    os.close(fd)
    return None


def _remove_locked(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)


def remove_stale_parts(folder: Path, name: str) -> None:
    """Remove the ``.NAME.*.part`` files of `name` in `folder` that no run is using."""
    for path in _part_files(folder, name):
        fd = _open_locked(path)
        if fd is not None:
            _remove_locked(fd, path)


class PartFile:
    """The temp file a download writes to, held open and locked while in use."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.file: BinaryIO = os.fdopen(fd, "r+b")
        self.file.seek(0, os.SEEK_END)
        self.closed = False

    @classmethod
    def claim(cls, folder: Path, name: str) -> PartFile:
        """Reuse the largest unused ``.NAME.*.part`` (removing the other unused ones),
        or create a new one."""
        best: tuple[int, Path, int] | None = None
        for path in _part_files(folder, name):
            fd = _open_locked(path)
            if fd is None:
                continue
            size = os.fstat(fd).st_size
            if best is not None and best[2] >= size:
                _remove_locked(fd, path)
                continue
            if best is not None:
                _remove_locked(best[0], best[1])
            best = (fd, path, size)
        if best is not None:
            return cls(best[1], best[0])
        for _ in range(5):  # bounded: another run could lock our brand-new file first
            try:
                fd, path = make_temp(folder, name)
            except FcgradError as exc:
                raise DataError(str(exc)) from None
            if _lock(fd, path):
                return cls(path, fd)
            os.close(fd)
        raise DataError(f"cannot lock a temporary file in {folder}")

    @property
    def size(self) -> int:
        return self.file.tell()

    def chunks(self) -> Iterator[bytes]:
        """The bytes already in the file, from the start (leaves the position at the end)."""
        try:
            self.file.seek(0)
            yield from iter(lambda: self.file.read(CHUNK_BYTES), b"")
        except OSError as exc:
            raise LocalError(exc) from None

    def write(self, data: bytes) -> None:
        try:
            _write_bytes(self.file, data)
        except OSError as exc:
            raise LocalError(exc) from None

    def reset(self) -> None:
        """Drop every byte: the next transfer starts at 0."""
        try:
            self.file.seek(0)
            self.file.truncate()
        except OSError as exc:
            raise LocalError(exc) from None

    def commit(self, final: Path) -> None:
        """fsync, rename to `final` and close."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            os.replace(self.path, final)
        except OSError as exc:
            raise LocalError(exc) from None
        self.closed = True
        with contextlib.suppress(OSError):
            self.file.close()

    def close(self, keep: bool) -> None:
        """Close; keep the file (for a later resume) only if asked and it holds bytes."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            keep = keep and self.size > 0
            if not keep:
                self.path.unlink()
        with contextlib.suppress(OSError):
            self.file.close()
