"""`gradcheck --function --inputs FILE.npz` and `--shape` as hostile input: bounded memory
and one line (issue #13: a huge --shape was a MemoryError traceback)."""

from __future__ import annotations

import io
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.cli import userfn
from fcgrad.errors import FcgradError
from tests.cli.helpers import run
from tests.fuzzing import damaged

USER = "from fcgrad import ops\n\ndef loss(w, x):\n    return ops.sum(ops.tanh(x @ w))\n"


def _bomb(path: Path, shape: tuple[int, ...], extra: int = 2**20) -> Path:
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float64))
    header["shape"] = shape
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", buf.getvalue() + bytes(extra))
    return path


def _one_line(args: list[str], tmp_path: Path, code: int) -> str:
    (tmp_path / "mine.py").write_text(USER)
    result = run("gradcheck", "--function", f"{tmp_path / 'mine.py'}:loss", *args)
    assert result.exit_code == code and "Traceback" not in result.output, result.output
    (line,) = result.stderr.strip().splitlines()
    return str(line)


def test_inputs_that_claim_terabytes_are_refused_from_the_header(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.npz", (2**36,))  # 1 MB of the 512 GB it claims
    tracemalloc.start()
    try:
        line = _one_line(["--inputs", str(bomb)], tmp_path, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line == f"error: --inputs {bomb}: x holds fewer bytes than its header declares"
    assert peak < 32 * 2**20


def test_the_inputs_memory_estimate_counts_float64_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_grads works in float64, so float32 inputs of 4 MB are 8 MB of float64 in each
    of CHECK_COPIES copies: 128 MB (the estimate counted their own 4 bytes an element)."""
    from fcgrad.nn import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * 2**20)
    np.savez(tmp_path / "w.npz", w=np.zeros((1000, 1000), np.float32))
    line = _one_line(["--inputs", str(tmp_path / "w.npz")], tmp_path, 2)
    assert "needs about 122 MB of memory and 100 MB is available" in line


def test_an_entry_longer_than_its_header_is_refused(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "long.npz", (3,), extra=2**24)
    line = _one_line(["--inputs", str(bomb)], tmp_path, 1)
    assert line.endswith("x holds more bytes than its header declares")


def test_a_huge_shape_is_refused_before_it_is_drawn(tmp_path: Path) -> None:
    line = _one_line(["--shape", "100000,100000", "--shape", "3"], tmp_path, 2)
    assert line.startswith("error: --shape too large: checking arrays of these shapes needs")


def test_an_entry_with_a_huge_name_is_one_short_line(tmp_path: Path) -> None:
    """A zip member named by 60,000 characters (not `.npy`) made a 60 KB error line."""
    path = tmp_path / "named.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a" * 60_000, b"\x93NUMPY")
    line = _one_line(["--inputs", str(path)], tmp_path, 1)
    assert line.startswith(f"error: --inputs {path}: aaaa") and "...aaaa" in line
    assert line.endswith("is not an array (KeyError)") and len(line) < 400, len(line)


def test_an_empty_inputs_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    line = _one_line(["--inputs", str(path)], tmp_path, 1)
    assert line == f"error: --inputs {path}: empty or truncated"


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_fuzzed_inputs_files_raise_only_fcgrads_errors(
    data: st.DataObject, compressed: bool
) -> None:
    """Only fcgrad's own errors, each one short line naming the file, in bounded memory."""
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, w=np.ones((4, 3)), x=np.arange(20.0).reshape(5, 4))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.npz"
        path.write_bytes(damaged(data, buf.getvalue()))
        tracemalloc.start()
        try:
            userfn.make_inputs(path, [], 0)
        except FcgradError as e:
            text = str(e)
            assert "fuzzed.npz" in text and "\n" not in text and len(text) < 400, text
            assert text.isprintable(), text
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peak < 32 * 2**20
