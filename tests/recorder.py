"""A `fcgrad.progress.Steps` for tests: it keeps what it hears."""

from __future__ import annotations


class Recorder:
    """`Steps` that keeps what it hears."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.labels: list[str] = []

    def start(self, total: int) -> None:
        self.totals.append(total)

    def step(self, label: str) -> None:
        self.labels.append(label)
