"""Atomic file writes (a file appears under its final name complete, or not at all), and
what to say when a numpy file cannot be read."""

from __future__ import annotations

import contextlib
import math
import os
import stat
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from fcgrad.errors import DataError, FcgradError, WriteError, one_line


def make_temp(folder: Path, name: str, suffix: str = "") -> tuple[int, Path]:
    """Create `.NAME.<random>.part<suffix>` in `folder`; return (open fd, path).

    mkstemp makes the file 0600; it is set to what a plain open() would give
    (0666 less the umask), so that the renamed file has ordinary permissions.
    Raises FcgradError when the folder does not exist or cannot be written.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{_stem(name)}.", suffix=f".part{suffix}")
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {os_reason(e)}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, Path(tmp)


MAX_STEM = 50  # characters of a file's name in its temporary's, for names near NAME_MAX


def _stem(name: str) -> str:
    """`name` as its temporary's name begins: cut to MAX_STEM characters when long, since
    `.NAME.<random>.part.npz` must fit the 255 bytes a file name may have (a legal
    245-character --save name failed only after training)."""
    return name if len(os.fsencode(name)) <= 4 * MAX_STEM else name[:MAX_STEM]


def writable_target(path: str | os.PathLike[str]) -> Path:
    """The file that writing `path` will replace: a symlink's target, else `path` itself.

    Raises FcgradError, before any work is done, when that is not a regular file
    (a device such as /dev/null, a folder), its folder is missing or read-only, or the
    path cannot be followed (a symlink loop, a name too long for the file system).
    """
    try:
        return _writable_target(path)
    except (OSError, RuntimeError) as e:  # RuntimeError: Path.resolve on a symlink loop
        reason = os_reason(e) if isinstance(e, OSError) else "a symlink loop"
        raise WriteError(f"cannot write {short_path(path)}: {reason}") from None


def _writable_target(path: str | os.PathLike[str]) -> Path:
    final = Path(path)
    if final.is_symlink():
        final = final.resolve(strict=False)
    shown, folder = short_path(path), final.parent
    if final.exists() and not final.is_file():
        kind = file_kind(final.stat().st_mode)
        raise FcgradError(f"{shown} is {kind}, not a regular file; refusing to replace it")
    if not folder.is_dir():
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            folder.stat()  # OSError for a folder that cannot be followed (a symlink loop)
        raise FcgradError(f"cannot write {shown}: folder {short_path(folder)} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FcgradError(f"cannot write {shown}: folder {short_path(folder)} is not writable")
    return final


MAX_SHOWN = 160  # characters of a path a one-line message shows


def short_path(path: object) -> str:
    """`path` as a message shows it: whole, or its first and last 78 characters around
    '...' when longer than MAX_SHOWN (a 5,000-character path made a 68 KB error line);
    control characters escaped (`fcgrad.errors.one_line`)."""
    return one_line(str(path), MAX_SHOWN)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; rename it to `path` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and `path` is left as it was. A symlink is kept: its target is replaced. The file is
    fsynced before the rename and its folder after, so that a power cut leaves the old
    file or the new one whole.
    `suffix` is kept at the end of the temporary name for writers that add one
    (numpy's `savez` appends `.npz`).
    Raises FcgradError as `writable_target` does, and WriteError naming `path` and the
    reason when the writing fails (a full disk: ENOSPC) instead of the OSError.
    """
    final = writable_target(path)
    remove_stale_temps(final.parent, final.name, suffix)
    fd, tmp = make_temp(final.parent, final.name, suffix)
    _try_lock(fd)  # held while we write: a later run sees the file is in use
    with contextlib.suppress(OSError):  # a file replaced keeps its mode (a 0600 checkpoint
        os.fchmod(fd, stat.S_IMODE(os.stat(final).st_mode))  # was saved back as 0644)
    try:
        yield Path(tmp)
        os.fsync(fd)  # its bytes on the disk before its name: a power cut leaves the old
        os.replace(tmp, final)  # file or the whole new one, not an empty one
        _fsync_folder(final.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise WriteError(f"cannot write {short_path(path)}: {os_reason(e)}") from None
        raise
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (where the system lets a folder be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temps(folder: Path, name: str, suffix: str = "", *, prefix: bool = False) -> None:
    """Remove the `.NAME.*.part<suffix>` temporaries in `folder` that no writer holds
    (with `prefix`, those of every name that begins with `name`): a process killed while
    writing (SIGKILL, a power cut) cannot remove its own, so the next write of the same
    file does. A writer holds its temporary locked (flock) for as long as it writes; a
    file that can be locked has no writer."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    start = f".{name}" if prefix else f".{_stem(name)}."
    for n in names:
        if not (n.startswith(start) and n.endswith(f".part{suffix}")):
            continue
        try:
            fd = os.open(folder / n, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if _try_lock(fd):
                with contextlib.suppress(OSError):
                    os.unlink(folder / n)
        finally:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    """Lock `fd` exclusively without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no sweeping
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def os_reason(error: OSError) -> str:
    """An OSError in a few words: its strerror ('No space left on device'), else its text."""
    return error.strerror or str(error) or type(error).__name__


# What np.load and reading a damaged zip or .npy raise, besides fcgrad's own errors
READ_ERRORS = (
    OSError,
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    SyntaxError,
    RuntimeError,  # zipfile: an encrypted entry; NotImplementedError: an unknown version
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
)
HEADER_SLACK = 4096  # an .npy entry's bytes beyond its data: the magic and the header


def npz_headers(npz: Any, path: object) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each entry of an open .npz (`np.load`'s NpzFile) as (shape, dtype), from its .npy
    header alone: nothing is decompressed past it, so a crafted file that claims or
    inflates to gigabytes costs no memory. DataError naming `path` when an entry is not
    an .npy array or its zip entry holds more or fewer bytes than its header says."""
    out = {}
    archive: zipfile.ZipFile = npz.zip
    for name in npz.files:
        try:
            info = archive.getinfo(f"{name}.npy")  # (KeyError for an entry not named .npy)
            with archive.open(info) as f:
                shape, dtype = npy_header(f)
        except READ_ERRORS as e:  # numpy parses a header with ast and tokenize
            shown = short_path(name)
            raise DataError(f"{path}: {shown} is not an array ({type(e).__name__})") from None
        size = math.prod(shape) * dtype.itemsize
        if info.file_size < size:  # (a tiny entry claiming gigabytes: refused unread)
            raise DataError(
                f"{path}: {short_path(name)} holds fewer bytes than its header declares"
            )
        if info.file_size > size + HEADER_SLACK:
            raise DataError(f"{path}: {short_path(name)} holds more bytes than its header declares")
        out[name] = (tuple(shape), dtype)
    return out


def npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """The (shape, dtype) of the .npy array that `f` is at the start of, from its header
    alone (numpy's format 1.0 or 2.0); ValueError and the rest of READ_ERRORS when it is
    not one."""
    version = np.lib.format.read_magic(f)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read(f)
    return tuple(shape), dtype


def open_regular(path: str | os.PathLike[str], what: object = None) -> BinaryIO:
    """`path` opened for reading bytes; DataError naming `what` (default the path) when
    it is not a regular file: opening a FIFO waits for a writer for ever, and a device can
    be read without end (a helper's report on #13). It is opened without blocking and
    then looked at, so nothing can take its place between the look and the open. OSError
    as `open` raises it (a path that is not there)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"{what or short_path(path)} is {file_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, from its `st_mode`: "a directory", "a
    FIFO (a named pipe)", "a device", "a socket"."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (a named pipe)"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def load_error_reason(error: BaseException) -> str:
    """Why `np.load(..., allow_pickle=False)` refused a file, in a user's words: numpy's own
    message for a file that is not .npy or .npz at all offers `allow_pickle`, which a
    user of the command line cannot give and should not want."""
    text = str(error)
    if "pickled" in text or "allow_pickle" in text:
        return "not a .npy or .npz file of numeric arrays"
    if isinstance(error, zipfile.BadZipFile):
        return "a truncated or corrupt .npz"
    if isinstance(error, EOFError) or "No data left" in text:
        return "empty or truncated"
    if "mmap length is greater" in text:  # (np.load with mmap_mode of a short .npy)
        return "it holds fewer bytes than its header declares"
    return short_path(getattr(error, "strerror", None) or text)
