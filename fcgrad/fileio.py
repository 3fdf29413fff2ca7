"""Atomic file writes (a file appears under its final name complete, or not at all), and
what to say when a numpy file cannot be read."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from fcgrad.errors import FcgradError, WriteError


def make_temp(folder: Path, name: str, suffix: str = "") -> tuple[int, Path]:
    """Create `.NAME.<random>.part<suffix>` in `folder`; return (open fd, path).

    mkstemp makes the file 0600; it is set to what a plain open() would give
    (0666 less the umask), so that the renamed file has ordinary permissions.
    Raises FcgradError when the folder does not exist or cannot be written.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=f".part{suffix}")
    except OSError as e:
        raise WriteError(f"cannot write to {folder}: {os_reason(e)}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, Path(tmp)


def writable_target(path: str | os.PathLike[str]) -> Path:
    """The file that writing `path` will replace: a symlink's target, else `path` itself.

    Raises FcgradError, before any work is done, when that is not a regular file
    (a device such as /dev/null, a folder) or its folder is missing or read-only.
    """
    final = Path(path)
    if final.is_symlink():
        final = final.resolve()
    if final.exists() and not final.is_file():
        raise FcgradError(f"{path} is not a regular file; refusing to replace it")
    folder = final.parent
    if not folder.is_dir():
        raise FcgradError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FcgradError(f"cannot write {path}: folder {folder} is not writable")
    return final


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; rename it to `path` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and `path` is left as it was. A symlink is kept: its target is replaced.
    `suffix` is kept at the end of the temporary name for writers that add one
    (numpy's `savez` appends `.npz`).
    Raises FcgradError as `writable_target` does, and WriteError naming `path` and the
    reason when the writing fails (a full disk: ENOSPC) instead of the OSError.
    """
    final = writable_target(path)
    fd, tmp = make_temp(final.parent, final.name, suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise WriteError(f"cannot write {path}: {os_reason(e)}") from None
        raise


def os_reason(error: OSError) -> str:
    """An OSError in a few words: its strerror ('No space left on device'), else its text."""
    return error.strerror or str(error) or type(error).__name__


LOAD_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)  # what np.load raises


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
    return getattr(error, "strerror", None) or text
