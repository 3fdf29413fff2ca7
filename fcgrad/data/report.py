"""What `download_mnist` reports: a FileResult per file, and the DownloadProgress protocol.

The core never draws anything: a caller that wants a progress bar passes an object with
DownloadProgress's three methods (sizes in bytes); NoProgress is the silent default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol


class DownloadProgress(Protocol):
    """Receives progress of each download attempt (the core never draws anything).

    `start` is called once a mirror answers with a body (total_bytes: the whole file's
    compressed size in bytes, None if unknown; source: the URL after redirects, or the
    path), `advance` with each chunk's size in bytes -- a resumed transfer first advances
    by the bytes already on disk -- and `end` exactly once after each started attempt.
    """

    def start(self, name: str, total_bytes: int | None, source: str) -> None: ...

    def advance(self, n_bytes: int) -> None: ...

    def end(self, ok: bool) -> None: ...


@dataclass
class FileResult:
    """The outcome for one file.

    size_bytes: size of the (compressed) file on disk; status: "downloaded" or "cached";
    mirror: the URL/path asked for (None when cached); url: where the bytes came from
    after redirects (== mirror unless redirected; None when cached);
    attempts: (url, reason) of each failed attempt before the one that worked, one per
    try (a retried mirror appears once per try).
    """

    name: str
    path: Path
    size_bytes: int
    raw_sha256: str
    status: Literal["downloaded", "cached"]
    mirror: str | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (path as a string, attempts as {url, reason} objects)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "raw_sha256": self.raw_sha256,
            "status": self.status,
            "mirror": self.mirror,
            "url": self.url,
            "attempts": [{"url": url, "reason": reason} for url, reason in self.attempts],
        }


@dataclass
class DownloadReport:
    """One FileResult per MNIST file, in MNIST_FILES order."""

    rows: list[FileResult]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"rows": [...]}``."""
        return {"rows": [row.to_dict() for row in self.rows]}


class NoProgress:
    """A DownloadProgress that shows nothing (used when the caller gives none)."""

    def start(self, name: str, total_bytes: int | None, source: str) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        pass

    def end(self, ok: bool) -> None:
        pass
