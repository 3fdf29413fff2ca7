"""A checkpoint that cannot be written where asked is written elsewhere, and the error
says where; nothing half-written is left."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.errors import WriteError
from fcgrad.training.checkpoint import Checkpoint
from fcgrad.training.train import TrainConfig, train
from tests.faults import full_disk


@pytest.fixture(scope="module")
def checkpoint(synthetic: Any) -> Checkpoint:
    x, y, xv, yv = (a[:320] for a in synthetic)
    return train(x, y, xv, yv, TrainConfig(epochs=1), stats=(0.1, 0.3)).checkpoint


def test_a_full_disk_rescues_the_checkpoint_to_the_temp_folder(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    with full_disk(tmp_path, monkeypatch) as full:
        with pytest.raises(WriteError) as e:
            checkpoint.save(full / "model.npz")
        assert list(full.iterdir()) == []  # no half-written file, no temporary one
    assert e.value.rescued is not None
    rescued = Path(e.value.rescued)
    assert rescued.parent == rescue and rescued.name.startswith("fcgrad-rescued-model-")
    assert str(e.value) == (
        f"cannot write {full / 'model.npz'}: No space left on device; "
        f"the checkpoint is saved to {rescued} instead"
    )
    back = Checkpoint.load(rescued)
    for a, b in zip(back.params.arrays(), checkpoint.params.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_next_rescue_folder_when_the_temp_folder_is_full_too(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with full_disk(tmp_path, monkeypatch) as full:
        monkeypatch.setattr(tempfile, "tempdir", str(full))  # the temp folder is full too
        with pytest.raises(WriteError) as e:
            checkpoint.save(full / "model.npz", rescue=[other])
        assert list(full.iterdir()) == []
    assert e.value.rescued is not None and Path(e.value.rescued).parent == other


def test_nowhere_to_write_says_it_is_lost(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with full_disk(tmp_path, monkeypatch) as full:
        monkeypatch.setattr(tempfile, "tempdir", str(full))
        with pytest.raises(WriteError, match=r"nor in .*: it is lost$") as e:
            checkpoint.save(full / "model.npz", rescue=[tmp_path / "missing"])
    assert e.value.rescued is None


def test_a_rescue_cut_short_leaves_no_half_written_file(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill or a second Ctrl-C while the rescue is written (here: KeyboardInterrupt once
    half of it is) leaves nothing under a rescue's name: it was written under its final
    name, so a half-written `fcgrad-rescued-*.npz` stayed (a helper's report on #13)."""
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    with full_disk(tmp_path, monkeypatch) as full:
        real = np.savez

        def cut_short(file: Any, *args: Any, **kw: Any) -> None:
            if Path(file).parent == rescue:
                Path(file).write_bytes(b"PK\x03\x04 half of a checkpoint")
                raise KeyboardInterrupt
            real(file, *args, **kw)

        monkeypatch.setattr(np, "savez", cut_short)
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save(full / "model.npz")
    assert list(rescue.iterdir()) == []


def test_a_rescued_checkpoint_has_an_ordinary_files_mode(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved or rescued, a checkpoint has the mode a plain write gives (0666 less the
    umask); the rescue's was mkstemp's 0600."""
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    umask = os.umask(0o022)
    try:
        checkpoint.save(tmp_path / "plain.npz")
        with full_disk(tmp_path, monkeypatch) as full, pytest.raises(WriteError) as e:
            checkpoint.save(full / "model.npz")
    finally:
        os.umask(umask)
    assert e.value.rescued is not None
    modes = {stat.S_IMODE(os.stat(p).st_mode) for p in (tmp_path / "plain.npz", e.value.rescued)}
    assert modes == {0o644}


def test_a_rescue_sweeps_a_killed_rescues_temporary_and_has_a_name_one_can_paste(
    checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL mid-rescue left `.fcgrad-rescued-m-<hex>.npz.<random>.part.npz` for ever
    (the sweep looked for the new rescue's own name alone); a --save stem with a newline
    or an escape sequence gave the rescue that name, which the printed, escaped hint
    could not name."""
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    stale = rescue / ".fcgrad-rescued-m-9c8caf62.npz.p5iblgkz.part.npz"
    stale.write_bytes(bytes(1000))
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    with full_disk(tmp_path, monkeypatch) as full, pytest.raises(WriteError) as e:
        checkpoint.save(full / "a\nb\x1b[31mx.npz")
    assert e.value.rescued is not None
    (left,) = rescue.iterdir()
    assert left == Path(e.value.rescued) and left.name.startswith("fcgrad-rescued-a_b__31mx-")
