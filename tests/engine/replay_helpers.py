"""Shared helpers of the cached_vjp tests: the programs it holds, and bit-for-bit equality."""

from __future__ import annotations

from typing import Any

import numpy as np

from fcgrad.engine import replay


def programs(vjp_of: Any) -> dict[Any, replay.Program | replay.NotReplayed]:
    """The programs a cached_vjp function holds, by signature."""
    return vjp_of.programs  # type: ignore[no-any-return]


def not_replayed(vjp_of: Any) -> str:
    """Why the only signature of a cached_vjp function runs on fresh tapes."""
    (entry,) = programs(vjp_of).values()
    assert isinstance(entry, replay.NotReplayed)
    return entry.reason


def assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert np.result_type(a) == np.result_type(b)
    np.testing.assert_array_equal(a, b)
