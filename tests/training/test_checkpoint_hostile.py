"""Checkpoints as hostile files: bounded memory, and one DataError naming the file.

Issue #13: a 2 MB zip-bomb checkpoint cost 2.7 GB, a checkpoint of NaN weights was
"95.88% accurate", and malformed contents gave 16 different tracebacks."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fcgrad.errors import DataError
from fcgrad.nn.optimizers import Optimizer
from fcgrad.training.checkpoint import Checkpoint
from fcgrad.training.train import TrainConfig, train
from tests.fuzzing import damaged


@pytest.fixture(scope="module")
def saved(synthetic: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y, xv, yv = (a[:320] for a in synthetic)
    result = train(x, y, xv, yv, TrainConfig(epochs=1, hidden=(8,)), stats=(0.1, 0.3))
    return result.checkpoint.save(tmp_path_factory.mktemp("ck") / "w.npz")


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _write(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _peak_loading(path: Path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            Checkpoint.load(path)
        return str(e.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_weight_is_refused_from_its_header(saved: Path, tmp_path: Path) -> None:
    """1 GB of zeros in w1 (a few MB compressed): refused before it is decompressed."""
    entries = _entries(saved)
    big = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float32))
    big["shape"] = (2**28,)  # 1 GB of float32
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, big)
    entries["w1.npy"] = buf.getvalue() + bytes(2**24)  # 16 MB of it, compressing to 16 KB
    bomb = _write(tmp_path / "bomb.npz", entries)
    assert bomb.stat().st_size < 2**20
    message, peak = _peak_loading(bomb)
    assert message.endswith("bomb.npz: w1 holds fewer bytes than its header declares")
    assert peak < 8 * 2**20  # nothing near the claimed size was allocated


def test_a_net_of_its_own_too_big_for_memory_is_refused_before_reading(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrays whose headers fit the checkpoint's own configuration, of more bytes than the
    machine has (a 3.8 KB file claimed a 784-30000000-10 net: an 87.6 GiB MemoryError
    traceback): refused from the headers, with the figures."""
    from fcgrad.nn import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)
    message, peak = _peak_loading(saved)
    need = (784 * 8 + 8 + 8 * 10 + 10) * 4  # w1, b1, w2, b2 of the 784-8-10 net, float32
    assert message.endswith(
        f"w.npz: its arrays need {need / 2**20:,.0f} MB of memory and 0 MB is available"
    )
    assert peak < 2**20


def test_an_entry_larger_than_its_header_says_is_refused(saved: Path, tmp_path: Path) -> None:
    entries = _entries(saved)
    entries["b1.npy"] = entries["b1.npy"] + bytes(2**24)  # 16 MB hidden behind an 8-float b1
    message, peak = _peak_loading(_write(tmp_path / "long.npz", entries))
    assert message.endswith("long.npz: b1 holds more bytes than its header declares")
    assert peak < 8 * 2**20


def test_a_huge_state_string_is_refused(saved: Path, tmp_path: Path) -> None:
    entries = _entries(saved)
    entries["checkpoint.npy"] = _npy(np.array("x" * (5 * 2**20)))
    message, _ = _peak_loading(_write(tmp_path / "state.npz", entries))
    assert "state.npz: its state is not a JSON string of at most 4 MB" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.nan, "w2 holds NaN or infinite values; not a usable model"),
        (3e38, "w2 holds values as large as 3e+38, which overflow a float32 forward pass"),
    ],
    ids=["nan", "huge"],
)
def test_weights_that_are_no_model_are_refused(
    saved: Path, tmp_path: Path, value: float, message: str
) -> None:
    entries = _entries(saved)
    with np.load(saved) as data:
        w2 = np.array(data["w2"])
    w2[0, 0] = value
    entries["w2.npy"] = _npy(w2)
    text, _ = _peak_loading(_write(tmp_path / "bad.npz", entries))
    assert f"bad.npz: {message}" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(epoch=-1), "its epoch is -1, not a whole number from 1 to"),
        (lambda m: m.update(epoch=10**30), "not a whole number from 1 to 10,000,000"),
        (lambda m: m.update(step="3"), "its step is '3', not a whole number from 0 to"),
        (lambda m: m.update(step=10**9), "its step is 1000000000, not a whole number"),
        (lambda m: m.update(loss_sum=float("nan")), "its loss_sum is nan, not a finite number"),
        (lambda m: m.update(rng_state={"garbage": 1}), "its RNG state is not one numpy"),
        (
            lambda m: m["rng_state"]["state"].update(state=-1),  # out of uint64
            "its RNG state is not one numpy can restore",
        ),
        (
            lambda m: m.update(history=[1, 2]),
            "its history's record 1 is not an epoch's epoch, train_loss, valid_loss,",
        ),
        (
            lambda m: m["history"][0].update(train_loss="0.3"),
            "its history's record 1 has train_loss 0.3, not a number",
        ),
        (lambda m: m.update(mean=None), "its mean is None, not a finite number"),
        (lambda m: m.update(history={"a": 1}), "its history is {'a': 1}, not a list of epochs"),
        (lambda m: m["config"].update(hidden=["8"]), "is not an fcgrad checkpoint"),
        (lambda m: m["config"].update(batch_size=0), "batch_size must be at least 1, got 0"),
        (lambda m: m.pop("config"), "is not an fcgrad checkpoint"),
        (lambda m: m["history"].append({"x": 1}), "its history's record 2 is not an epoch's"),
        (lambda m: m["config"].update(seed=-1), "seed must be at least 0, got -1"),
        (
            lambda m: m.update(history=m["history"] * 3),
            "its history records epochs [1, 1, 1], but a run at epoch 2 has one record for",
        ),
        (
            lambda m: m.update(epoch=3, history=[{**m["history"][0], "epoch": e} for e in (1, 2)]),
            "its epoch 3 is past the end of its run of 1 epochs",
        ),
        (lambda m: m.update(std=0.0), "(mean 0.1, std 0.0) are not a finite mean and a positive"),
        (lambda m: m.update(std=-0.3), "std -0.3) are not a finite mean and a positive std"),
        (lambda m: m.update(mean=float("nan")), "(mean nan, std 0.3) are not a finite mean"),
        (lambda m: m.update(std=float("inf")), "(mean 0.1, std inf) are not a finite mean"),
        (lambda m: m.update(threads=0), "its threads is 0, not a whole number from 1 to 1,024"),
        (lambda m: m.update(threads=2.0), "its threads is 2.0, not a whole number from 1 to"),
        (
            lambda m: m["history"][0].update(train_loss=float("nan")),
            "its history's record 1 has train_loss nan, not a finite number >= 0",
        ),
        (
            lambda m: m["history"][0].update(valid_accuracy=7.0),
            "its history's record 1 has valid_accuracy 7.0, not in [0, 1]",
        ),
        (
            lambda m: m["history"][0].update(seconds=-1.0),
            "its history's record 1 has seconds -1.0, not a finite number >= 0",
        ),
    ],
)
def test_malformed_state_is_one_data_error(
    saved: Path, tmp_path: Path, change: Any, message: str
) -> None:
    entries = _entries(saved)
    with np.load(saved) as data:
        meta = json.loads(str(data["checkpoint"]))
    change(meta)
    entries["checkpoint.npy"] = _npy(np.array(json.dumps(meta)))
    text, _ = _peak_loading(_write(tmp_path / "bad.npz", entries))
    assert "bad.npz" in text and message in text and "\n" not in text


@pytest.fixture(scope="module")
def saved_adam(synthetic: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y, xv, yv = (a[:320] for a in synthetic)
    config = TrainConfig(epochs=1, hidden=(8,), optimizer=Optimizer.adam)
    result = train(x, y, xv, yv, config, stats=(0.1, 0.3))
    return result.checkpoint.save(tmp_path_factory.mktemp("ck") / "adam.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, a: m["optimizer"].update(t=-5), "optimizer step count t is -5, not a whole"),
        (lambda m, a: m["optimizer"].update(t=1e300), "step count t is 1e+300, not a whole"),
        (lambda m, a: m["optimizer"].update(t=True), "step count t is True, not a whole"),
        (
            lambda m, a: a.update({"optimizer.v.w2": -a["optimizer.v.w2"] - 1e-3}),
            "optimizer state v.w2 is negative in places; Adam's v is >= 0",
        ),
        (
            lambda m, a: a.update({"optimizer.velocity.w1": a["w1"]}),
            "optimizer array optimizer.velocity.w1 is not one of adam's for a parameter",
        ),
        (
            lambda m, a: a.update({"optimizer.m.x.w1": a["w1"]}),
            "optimizer array optimizer.m.x.w1 is not one of adam's for a parameter of the net",
        ),
    ],
    ids=["t negative", "t float", "t bool", "v negative", "momentum's slot", "no such key"],
)
def test_an_optimizer_state_no_run_reaches_is_one_data_error(
    saved_adam: Path, tmp_path: Path, change: Any, message: str
) -> None:
    """Adam's t < 0 gave a math domain error's traceback, t = 1e300 was taken, and
    negative second moments trained to NaN (a helper's report on #13)."""
    with np.load(saved_adam) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    meta = json.loads(str(arrays["checkpoint"]))
    change(meta, arrays)
    arrays["checkpoint"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    text, _ = _peak_loading(tmp_path / "bad.npz")
    assert text.startswith(f"{tmp_path / 'bad.npz'} does not fit its own configuration:")
    assert message in text and "\n" not in text


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04", b"not a zip at all", b"\x93NUMPY"], ids=repr
)
def test_files_that_are_no_npz_are_one_data_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.npz").write_bytes(content)
    with pytest.raises(DataError, match=r"x\.npz"):
        Checkpoint.load(tmp_path / "x.npz")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_fuzzed_checkpoints_raise_only_data_error(saved: Path, data: st.DataObject) -> None:
    """Random bytes overwritten, cut out or inserted anywhere in a real checkpoint, or the
    file cut short (`tests.fuzzing.damaged`): it loads (the damage was harmless) or raises
    DataError, never anything else, and never allocates much more than a real
    checkpoint's arrays."""
    path = saved.parent / "fuzzed.npz"
    path.write_bytes(damaged(data, saved.read_bytes()))
    tracemalloc.start()
    try:
        Checkpoint.load(path)
    except DataError as e:
        assert "fuzzed.npz" in str(e) and "\n" not in str(e)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 * 2**20
