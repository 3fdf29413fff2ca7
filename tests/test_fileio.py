"""Atomic writes: a temporary left by a writer killed mid-write (SIGKILL) is removed by
the next write of the same file; one still being written is not (issue #13)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.fileio import atomic_path

WRITER = """
import sys, numpy as np
from fcgrad.fileio import atomic_path
with atomic_path(sys.argv[1], suffix=".npz") as tmp:
    np.savez(tmp, a=np.zeros(3))
    print("writing", flush=True)
    sys.stdin.readline()  # holds the temporary until told (or killed)
"""


def _writer(target: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"  # an event
    return proc


def _temps(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".part.npz"))


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "w.npz"
    proc = _writer(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(_temps(tmp_path)) == 1 and not target.exists()  # what SIGKILL leaves
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, a=np.ones(2))
    assert _temps(tmp_path) == [] and target.is_file()


def test_a_temporary_being_written_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "w.npz"
    proc = _writer(target)
    try:
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, a=np.ones(2))
        assert len(_temps(tmp_path)) == 1  # the other writer's, still held
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    assert _temps(tmp_path) == []  # it finished and renamed its own
    with np.load(target) as saved:
        np.testing.assert_array_equal(saved["a"], np.zeros(3))  # the last to finish wins


def test_paths_that_cannot_be_followed_are_one_short_line(tmp_path: Path) -> None:
    """A symlink loop, a name too long for the file system, a 5,000-character path."""
    import pytest

    from fcgrad.errors import WriteError
    from fcgrad.fileio import writable_target

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    long_name = tmp_path / ("x" * 300 + ".npz")
    deep = tmp_path.joinpath(*["d" * 200] * 25, "w.npz")
    for path, reason in [
        (tmp_path / "a", "a symlink loop"),
        (long_name, "File name too long"),
        (deep, "File name too long"),
    ]:
        with pytest.raises(WriteError) as e, atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, a=np.ones(1))
        message = str(e.value)
        assert message.startswith("cannot write ") and message.endswith(reason), message
        assert len(message) < 250 and "\n" not in message
        with pytest.raises(WriteError):
            writable_target(path)


def test_a_file_is_on_the_disk_before_it_has_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary is fsynced before the rename and the folder after it: a power cut
    between a rename and the data's write-back left an empty file under the final name."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else os.fstat(fd).st_size
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(a: Any, b: Any) -> None:
        events.append("rename")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"12345")
    assert events == ["fsync 5", "rename", "fsync folder"]


def test_a_long_legal_name_is_written_and_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    """A 249-character name is legal (255 bytes at most), but its temporary's name
    `.NAME.<random>.part.npz` was not, so a --save of that name failed only after
    training; and a 0600 checkpoint saved back by --resume became 0644."""
    long = tmp_path / ("n" * 245 + ".npz")
    with atomic_path(long, suffix=".npz") as tmp:
        np.savez(tmp, a=np.zeros(3))
    assert sorted(os.listdir(tmp_path)) == [long.name]
    private = tmp_path / "private.npz"
    private.write_bytes(b"old")
    private.chmod(0o600)
    with atomic_path(private) as tmp:
        tmp.write_bytes(b"new")
    assert private.read_bytes() == b"new" and stat.S_IMODE(private.stat().st_mode) == 0o600
