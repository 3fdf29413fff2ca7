"""How long work tells its progress without printing: a caller passes `Steps`, the work
says how many steps it will take and names each one as it starts it."""

from __future__ import annotations

from typing import Protocol


class Steps(Protocol):
    """Receives a long computation's progress (`fcgrad.cli.render` draws it as a bar)."""

    def start(self, total: int) -> None:
        """`total` steps are coming."""

    def step(self, label: str) -> None:
        """The next step begins; `label` says what it is (e.g. 'gradients of vwc')."""


class NoSteps:
    """Progress that goes nowhere: the default."""

    def start(self, total: int) -> None:
        pass

    def step(self, label: str) -> None:
        pass
