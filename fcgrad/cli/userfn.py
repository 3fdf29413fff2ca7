"""Loading a user's function and its inputs for `fcgrad gradcheck --function`."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fcgrad.errors import ConfigError, DataError, FcgradError, UserCodeError
from fcgrad.fileio import READ_ERRORS, load_error_reason, npz_headers, open_regular, short_path
from fcgrad.nn.memory import check_fits


def load_object(spec: str, option: str = "--function") -> Callable[..., Any]:
    """The callable named by `module:attr` (a dotted module importable from the current folder)
    or `path/to/file.py:attr`; `attr` may be dotted (`Class.method`).

    Raises ConfigError, naming `option`, when it cannot be imported or is not callable.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{option} {spec!r}: expected MODULE:NAME or FILE.py:NAME")
    module = _import(module_name, option)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{option} {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{option} {spec!r}: {attr} is a {type(obj).__name__}, not a function")
    fn: Callable[..., Any] = obj
    return fn


def _import(name: str, option: str) -> Any:
    try:
        if name.endswith(".py"):
            path = Path(name)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ConfigError(f"{option}: no Python file at {name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` would: the user's own modules
        return importlib.import_module(name)
    except (ConfigError, KeyboardInterrupt):
        raise
    except BaseException as e:  # the user's module failed to import (sys.exit too): say how
        raise ConfigError(f"{option}: cannot import {short_path(name)}: {_raised(e)}") from None


def parse_shape(text: str) -> tuple[int, ...]:
    """'3,4' -> (3, 4); '' or 'scalar' -> (); ConfigError for anything else."""
    text = text.strip().strip("()")
    if text in ("", "scalar"):
        return ()
    parts = [p.strip() for p in re.split(r"[,x]", text)]
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"--shape {text!r}: expected sizes like 3,4 (or 'scalar')")
    shape = tuple(int(p) for p in parts)
    if any(n < 1 for n in shape):
        raise ConfigError(f"--shape {text!r}: sizes must be at least 1")
    return shape


def make_inputs(npz: Path | None, shapes: Sequence[str], seed: int) -> tuple[Any, ...]:
    """The arguments: the arrays of an .npz file in file order, or standard normal float64
    arrays of the given shapes drawn from `seed` (a scalar shape gives a float).

    Raises ConfigError when neither or both are given or the file is an .npy, DataError
    when the file cannot be read.
    """
    if (npz is None) == (not shapes):
        raise ConfigError(
            "give the function's inputs with --inputs FILE.npz or with --shape (not both)"
        )
    if npz is not None:
        try:
            with open_regular(npz, f"--inputs {short_path(npz)}") as f:
                return _read_inputs(npz, f)
        except FcgradError:
            raise
        except READ_ERRORS as e:
            raise DataError(f"--inputs {npz}: {load_error_reason(e)}") from None
    parsed = [parse_shape(text) for text in shapes]
    _check_size(sum(math.prod(s) * 8 for s in parsed), "arrays of these shapes", "shape")
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for shape in parsed:
        out.append(float(rng.standard_normal()) if shape == () else rng.standard_normal(shape))
    return tuple(out)


def _read_inputs(npz: Path, f: BinaryIO) -> tuple[Any, ...]:
    """The arrays of the .npz file open in `f`, once their headers show they fit."""
    loaded = np.load(f, allow_pickle=False)
    if isinstance(loaded, np.ndarray):  # an .npy: one array, not named inputs
        raise ConfigError(
            f"--inputs {npz}: one .npy array; save the inputs with np.savez as an .npz"
        )
    with loaded as data:
        found = npz_headers(data, f"--inputs {npz}")  # sizes, before any is read
        _check_kinds(found, npz)
        declared = sum(  # (as checked: at least float64's 8 bytes an element)
            math.prod(shape) * max(dt.itemsize, 8) for shape, dt in found.values()
        )
        _check_size(declared, f"the arrays of {npz}", "inputs")
        return tuple(data[k] for k in data.files)


def _check_kinds(found: dict[str, tuple[tuple[int, ...], np.dtype]], npz: Path) -> None:
    """DataError (a file's fault: exit 1, as for any other bad file) for an array of the
    file that is not real numbers (strings, booleans, complex, objects)."""
    for name, (_, dtype) in found.items():
        if dtype.kind not in "fiu":
            raise DataError(
                f"--inputs {short_path(npz)}: {short_path(name)} is {dtype}, not an array "
                "of real numbers"
            )


# Input-sized float64 arrays check_grads holds at its peak (the values, their promoted
# copies, the function's intermediates, gradients, central differences): 15 were measured
# for a 20000 x 10000 input (23.5 GB), so 16 with a margin.
CHECK_COPIES = 16


def _check_size(nbytes: int, what: str, param: str) -> None:
    """ConfigError when checking inputs of `nbytes` needs more memory than is available."""
    check_fits(CHECK_COPIES * max(nbytes, 1), f"checking {what}", param=param)


def guarded(f: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`f` whose exceptions become one-line UserCodeErrors naming it (a user's bug, not ours)."""

    def call(*args: Any) -> Any:
        try:
            return f(*args)
        except (FcgradError, KeyboardInterrupt):
            raise
        except BaseException as e:  # (sys.exit(3), GeneratorExit: its failure, not ours)
            raise UserCodeError(f"{name} raised {_raised(e)}") from None

    call.__qualname__ = name
    return call


def _raised(error: BaseException) -> str:
    """'ValueError: bad' or 'SystemExit(3)', its text cut to its two ends when long (a
    path in it is shown as any path is)."""
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r})"
    return f"{type(error).__name__}: {short_path(str(error))}"
