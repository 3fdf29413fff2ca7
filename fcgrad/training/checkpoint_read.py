"""Reading a checkpoint as an untrusted file: bounded memory, and one DataError naming the
file for anything that is not a checkpoint fcgrad wrote.

An .npz is a zip of .npy files, each a small header (shape, dtype) and its data. A
crafted one can claim, or decompress to, gigabytes (issue #13: a 2 MB zip bomb cost
2.7 GB). So nothing is decompressed before its header has been read and checked:

- the state (`checkpoint`, JSON) must be a string of at most `META_MAX_BYTES`;
- every array must have the shape and a float dtype that the configuration the state
  describes needs (the net's weights and biases, the optimizer's slots), and its zip
  entry must hold no more bytes than that;
- the values read must be finite (a checkpoint of NaN weights is not a model);
- the state's fields must have their types: counts are non-negative integers, the
  history's records have an epoch's fields, the RNG state is one numpy accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fcgrad.engine.threads import MAX_THREADS
from fcgrad.errors import DataError
from fcgrad.fileio import READ_ERRORS, npz_headers, short_path
from fcgrad.nn import memory

__all__ = ["READ_ERRORS", "check_state", "npz_headers", "read_arrays", "read_meta"]

MAX_MAGNITUDE = 1e15  # |value| beyond which products of 784 terms overflow float32
META_MAX_BYTES = 4 * 2**20  # the JSON state of a checkpoint: a few KB in practice


def read_meta(npz: Any, found: Mapping[str, tuple[tuple[int, ...], np.dtype]], path: object) -> Any:
    """The checkpoint's JSON state, after checking it is a string of bounded size."""
    if "checkpoint" not in found:
        raise DataError(
            f"{path} is not an fcgrad checkpoint (an .npz written by `fcgrad train --save`)"
        )
    shape, dtype = found["checkpoint"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > META_MAX_BYTES:
        raise DataError(f"{path}: its state is not a JSON string of at most 4 MB")
    try:
        return json.loads(str(npz["checkpoint"]))
    except ValueError as e:
        raise DataError(f"{path}: its state is not JSON ({e})") from None


def read_arrays(
    npz: Any,
    found: Mapping[str, tuple[tuple[int, ...], np.dtype]],
    expected: Mapping[str, tuple[int, ...]],
    path: object,
) -> dict[str, np.ndarray]:
    """The arrays `expected` names, each checked against its expected shape (and a float
    dtype) before it is read, and for finite values after; an array beyond them (a w3 of
    a deeper net than the configuration says) is refused too."""
    unfit = f"{path} does not fit its own configuration:"
    extra = sorted(set(found) - set(expected) - {"checkpoint"})
    if extra:
        names = short_path(", ".join(extra))
        raise DataError(f"{unfit} it holds {names}, which the configuration does not describe")
    needed = sum(math.prod(found[n][0]) * found[n][1].itemsize for n in expected if n in found)
    short = memory.shortfall(needed)
    if short is not None:
        raise DataError(f"{path}: its arrays need {short}")
    out = {}
    for name, shape in expected.items():
        if name not in found:
            raise DataError(f"{unfit} {name} is missing")
        got, dtype = found[name]
        if got != shape or dtype.kind != "f":
            raise DataError(f"{unfit} {name} is {got} {dtype}, where it needs {shape} float")
        array = np.asarray(npz[name])
        if not np.all(np.isfinite(array)):
            raise DataError(f"{path}: {name} holds NaN or infinite values; not a usable model")
        biggest = float(np.max(np.abs(array))) if array.size else 0.0
        if biggest > MAX_MAGNITUDE:
            raise DataError(
                f"{path}: {name} holds values as large as {biggest:.3g}, which overflow a "
                "float32 forward pass; not a usable model"
            )
        out[name] = array
    return out


MAX_COUNT = 10**7  # epochs or steps: far beyond any run (an epoch at batch 1 is 60,000)
HISTORY_FIELDS = {
    "epoch": int,
    "train_loss": float,
    "valid_loss": float,
    "valid_accuracy": float,
    "seconds": float,
}


def check_state(meta: Mapping[str, Any], path: object) -> None:
    """The state's fields have their types and ranges (DataError naming the first not)."""
    counts = {"epoch": 1, "step": 0}
    for key, least in counts.items():
        value: Any = meta.get(key)
        if not _whole(value) or not least <= value <= MAX_COUNT:
            wanted = f"a whole number from {least} to {MAX_COUNT:,}"
            raise DataError(f"{path}: its {key} is {value!r}, not {wanted}")
    for key in ("loss_sum", "mean", "std"):
        value = meta.get(key)
        if not _number(value) or (key == "loss_sum" and not math.isfinite(value)):
            raise DataError(f"{path}: its {key} is {value!r}, not a finite number")
    _check_statistics(meta["mean"], meta["std"], path)
    threads = meta.get("threads")
    if threads is not None and not (_whole(threads) and 1 <= threads <= MAX_THREADS):
        wanted = f"a whole number from 1 to {MAX_THREADS:,}"
        raise DataError(f"{path}: its threads is {threads!r}, not {wanted}")
    history = meta.get("history")
    if not isinstance(history, list):
        raise DataError(f"{path}: its history is {short_path(history)}, not a list of epochs")
    for i, record in enumerate(history, 1):
        problem = _epoch_problem(record)
        if problem is not None:
            raise DataError(f"{path}: its history's record {i} {problem}")
    recorded = [e["epoch"] for e in history]
    if recorded != list(range(1, meta["epoch"])):
        shown = short_path(recorded)  # (a long list: its two ends)
        raise DataError(
            f"{path}: its history records epochs {shown}, but a run at epoch "
            f"{meta['epoch']} has one record for each epoch before it"
        )
    generator: Any = np.random.default_rng().bit_generator
    try:
        generator.state = meta.get("rng_state")
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise DataError(f"{path}: its RNG state is not one numpy can restore ({e})") from None


def _check_statistics(mean: float, std: float, path: object) -> None:
    """The training data's (mean, std): both finite with std > 0, or both NaN (a run of
    the Python API given none)."""
    unknown = math.isnan(mean) and math.isnan(std)
    if not unknown and not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise DataError(
            f"{path}: its statistics (mean {mean!r}, std {std!r}) are not a finite mean "
            "and a positive std"
        )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch_problem(record: Any) -> str | None:
    """What is wrong with a history record, or None: it has exactly an EpochResult's
    fields, each of its type and range (losses and seconds finite and >= 0, an accuracy
    in [0, 1])."""
    if not isinstance(record, dict) or set(record) != set(HISTORY_FIELDS):
        return f"is not an epoch's {', '.join(HISTORY_FIELDS)}"
    for key, kind in HISTORY_FIELDS.items():
        value = record[key]
        if not (_whole(value) if kind is int else _number(value)):
            return f"has {key} {short_path(value)}, not a {'whole ' if kind is int else ''}number"
    for key in ("train_loss", "valid_loss", "seconds"):
        if not (math.isfinite(record[key]) and record[key] >= 0):
            return f"has {key} {record[key]!r}, not a finite number >= 0"
    if not 0 <= record["valid_accuracy"] <= 1:
        return f"has valid_accuracy {record['valid_accuracy']!r}, not in [0, 1]"
    return None
