"""Fixtures of the download tests: loopback mirrors that misbehave on purpose."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.data.faulty_server import FaultyServer


@pytest.fixture
def servers(shared_mnist: Path) -> Iterator[Callable[[], FaultyServer]]:
    """Factory: servers() -> a new FaultyServer on the shared MNIST; all stop at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(FaultyServer(shared_mnist))
