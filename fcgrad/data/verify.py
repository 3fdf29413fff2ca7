"""Verifying an MNIST file against its MnistFile spec, as it streams in or on disk.

A file passes on its *uncompressed* IDX content: the header's dtype and shape, then the
uncompressed size in bytes and SHA-256, so the official ``.gz`` files, recompressed copies
and (on disk) raw IDX files all pass. Malformed bytes raise IDXError, well-formed bytes
that are not the wanted file raise Rejected.
"""

from __future__ import annotations

import os

from fcgrad.data.idx import CHUNK_BYTES, IDXStream
from fcgrad.data.mirrors import MnistFile
from fcgrad.errors import IDXError


class Rejected(Exception):
    """The bytes are well-formed IDX but not the file we want (internal to fcgrad.data)."""


class Verifier:
    """Checks a file's bytes against its MnistFile spec while they stream in."""

    def __init__(self, spec: MnistFile, source: str, *, require_gzip: bool) -> None:
        self._spec = spec
        self._stream = IDXStream(source, keep=False, hash_raw=True, require_gzip=require_gzip)
        self._header_ok = False

    @property
    def complete(self) -> bool:
        """True when every byte of the file has been fed (`finish` may still reject it)."""
        return self._stream.complete

    def feed(self, chunk: bytes) -> None:
        self._stream.feed(chunk)
        header = self._stream.header
        if header is None or self._header_ok:
            return
        if header.dtype.name != self._spec.dtype or header.shape != self._spec.shape:
            raise Rejected(
                f"IDX header says {header.dtype.name} {header.shape}, "
                f"expected {self._spec.dtype} {self._spec.shape}"
            )
        self._header_ok = True

    def finish(self) -> str:
        """Returns the raw SHA-256; raises IDXError or Rejected on a mismatch."""
        self._stream.finish()
        size, digest = self._stream.raw_size, self._stream.raw_sha256()
        if size != self._spec.raw_size:
            raise Rejected(f"uncompressed size {size} bytes, expected {self._spec.raw_size}")
        if digest != self._spec.raw_sha256:
            raise Rejected(f"SHA-256 mismatch (got {digest[:12]}...)")
        return digest


def idx_reason(exc: IDXError, source: str) -> str:
    return str(exc).removeprefix(f"{source}: ")


def verify_file(path: str | os.PathLike[str], spec: MnistFile) -> str | None:
    """Check a file on disk (gzip or raw IDX) against `spec`: IDX header dtype/shape,
    uncompressed size (bytes) and SHA-256. Returns None when it matches, else a short
    reason. Never raises for a bad or unreadable file."""
    source = str(path)
    verifier = Verifier(spec, source, require_gzip=False)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                verifier.feed(chunk)
        verifier.finish()
    except OSError as exc:
        return str(exc.strerror or exc)
    except IDXError as exc:
        return idx_reason(exc, source)
    except Rejected as exc:
        return str(exc)
    return None
