"""Read and write IDX files (the MNIST container format), gzip-compressed or raw.

An IDX file is a big-endian header -- two zero bytes, a type byte, a dimension
count ``ndim``, then ``ndim`` uint32 dimensions -- followed by exactly
``prod(dims) * itemsize`` payload bytes. Compression is detected from the gzip
signature ``1f 8b``, never from the file name.

Every malformed input raises `IDXError` with a one-line message that starts with
the file (or URL) it came from; an unreadable or unwritable path raises `DataError`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fcgrad.errors import DataError, IDXError

GZIP_MAGIC = b"\x1f\x8b"
MAX_PAYLOAD_BYTES = 2**31
"""Largest payload (bytes) a header may claim; larger claims are rejected before allocating."""

MAX_NDIM = 32
"""Most dimensions a header may declare (numpy 1.x arrays hold at most 32)."""

CHUNK_BYTES = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_MAX_HEADER_BYTES = 4 + 4 * 255

_TYPE_CODES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
_CODE_OF: dict[np.dtype[Any], int] = {dt: code for code, dt in _TYPE_CODES.items()}
_KNOWN = ", ".join(f"0x{code:02X} {dt.name}" for code, dt in _TYPE_CODES.items())


@dataclass(frozen=True)
class IDXHeader:
    """A parsed IDX header.

    dtype: the native-endian element type; shape: the dimensions;
    header_size: header length in bytes (4 + 4 * ndim);
    payload_size: bytes that must follow the header (prod(shape) * itemsize).
    """

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    header_size: int
    payload_size: int


def _fail(source: str, what: str) -> IDXError:
    return IDXError(f"{source}: {what}")


def _needed_header_bytes(head: bytes) -> int:
    return 4 if len(head) < 4 else 4 + 4 * head[3]


def _header_or_none(head: bytes, source: str) -> IDXHeader | None:
    """Parse the header at the start of `head`; None while more bytes are needed."""
    if len(head) >= 2 and head[:2] != b"\0\0":
        raise _fail(
            source,
            f"bad magic {head[:4].hex(' ')} (an IDX file starts with 00 00, "
            "a type byte and a dimension count)",
        )
    if len(head) < 4:
        return None
    dtype = _TYPE_CODES.get(head[2])
    if dtype is None:
        raise _fail(source, f"unknown IDX type byte 0x{head[2]:02X} (known: {_KNOWN})")
    if head[3] > MAX_NDIM:
        raise _fail(source, f"header declares {head[3]} dimensions (at most {MAX_NDIM})")
    size = _needed_header_bytes(head)
    if len(head) < size:
        return None
    shape = struct.unpack(f">{head[3]}I", head[4:size])
    payload = math.prod(shape) * dtype.itemsize
    # An empty array must still have a shape numpy can hold: bound it without its zeros.
    bound = math.prod(d for d in shape if d) * dtype.itemsize
    if max(payload, bound) > MAX_PAYLOAD_BYTES:
        dims = "x".join(map(str, shape))
        raise _fail(
            source,
            f"header claims an absurd size: {dims} {dtype.name} is {payload} bytes"
            + (f" ({bound} without its zero dimensions)" if bound != payload else "")
            + f" (limit {MAX_PAYLOAD_BYTES})",
        )
    return IDXHeader(dtype, tuple(shape), size, payload)


class IDXStream:
    """Incremental IDX decoder: `feed` the file's bytes (gzip or raw) in chunks, then `finish`.

    keep: keep the payload so `array()` can build the array (False to only verify);
    hash_raw: compute the SHA-256 of the uncompressed IDX bytes (`raw_sha256()`);
    require_gzip: reject input that does not start with the gzip signature;
    expect: (dtype name, shape) the header must declare, checked as soon as the header is
    in and before any payload is kept, so that a crafted file claiming gigabytes costs
    nothing (None: any header within MAX_PAYLOAD_BYTES).
    Raises IDXError from `feed` or `finish` as soon as the input is known to be bad;
    the decompressed size is bounded by what the header claims (no gzip bombs).
    """

    def __init__(
        self,
        source: str,
        *,
        keep: bool = True,
        hash_raw: bool = False,
        require_gzip: bool = False,
        expect: tuple[str, tuple[int, ...]] | None = None,
    ) -> None:
        self._expect = expect
        self.source = source
        self.header: IDXHeader | None = None
        self.raw_size = 0
        self._keep = keep
        self._require_gzip = require_gzip
        self._sha = hashlib.sha256() if hash_raw else None
        self._mode: str | None = None
        self._sniff = b""
        self._head = b""
        self._payload = bytearray()
        self._payload_len = 0
        self._z = zlib.decompressobj(_GZIP_WBITS)

    def feed(self, chunk: bytes) -> None:
        """Decode the next bytes of the file; raises IDXError on bad input."""
        if self._mode is None:
            self._sniff += chunk
            if len(self._sniff) < 2:
                return
            chunk, self._sniff = self._sniff, b""
            self._set_mode(chunk)
        if self._mode == "gzip":
            self._inflate(chunk)
        else:
            self._take(chunk)

    def finish(self) -> None:
        """Declare the end of input; raises IDXError if the file is truncated."""
        if self._mode is None:
            self._set_mode(self._sniff)
            self._take(self._sniff)
        if self._mode == "gzip" and not self._z.eof:
            raise _fail(self.source, "corrupt gzip stream: it ends before its end-of-stream marker")
        if self.header is None:
            need = _needed_header_bytes(self._head)
            raise _fail(
                self.source, f"truncated header: expected {need} bytes, got {len(self._head)}"
            )
        if self._payload_len < self.header.payload_size:
            raise _fail(
                self.source,
                f"truncated payload: expected {self.header.payload_size} bytes, "
                f"got {self._payload_len}",
            )

    @property
    def complete(self) -> bool:
        """True once the header and the whole payload have arrived (and, for gzip, the
        end of the compressed stream): `finish` would then succeed."""
        if self.header is None or self._payload_len != self.header.payload_size:
            return False
        return self._mode == "raw" or (self._mode == "gzip" and self._z.eof)

    def raw_sha256(self) -> str:
        """Hex SHA-256 of the uncompressed bytes fed so far (needs hash_raw=True)."""
        if self._sha is None:
            raise RuntimeError("IDXStream was created with hash_raw=False")
        return self._sha.hexdigest()

    def array(self) -> np.ndarray:
        """The decoded native-endian array (call after `finish`; needs keep=True)."""
        if self.header is None or not self._keep:
            raise RuntimeError("IDXStream.array() needs keep=True and a finished stream")
        big = self.header.dtype.newbyteorder(">")
        values = np.frombuffer(self._payload, dtype=big).astype(self.header.dtype, copy=False)
        return values.reshape(self.header.shape)

    def _set_mode(self, first: bytes) -> None:
        self._mode = "gzip" if first[:2] == GZIP_MAGIC else "raw"
        if self._mode == "raw" and self._require_gzip:
            raise _fail(self.source, f"not gzip data (starts with {first[:16]!r})")

    def _inflate(self, data: bytes) -> None:
        while True:
            z = self._z
            try:
                out = z.decompress(data, CHUNK_BYTES)
            except zlib.error as exc:
                raise _fail(self.source, f"corrupt gzip stream ({exc})") from None
            self._take(out)
            if z.eof:
                data = z.unused_data
                if not data:
                    return
                self._z = zlib.decompressobj(_GZIP_WBITS)  # next gzip member
                continue
            data = z.unconsumed_tail
            if not data and len(out) < CHUNK_BYTES:
                return

    def _take(self, piece: bytes) -> None:
        if not piece:
            return
        if self._sha is not None:
            self._sha.update(piece)
        self.raw_size += len(piece)
        if self.header is None:
            self._head += piece
            self.header = _header_or_none(self._head, self.source)
            if self.header is None:
                return
            declared = (self.header.dtype.name, self.header.shape)
            if self._expect is not None and declared != self._expect:
                raise _fail(
                    self.source,
                    f"IDX header says {declared[0]} {declared[1]}, expected "
                    f"{self._expect[0]} {self._expect[1]}",
                )
            piece = self._head[self.header.header_size :]
            self._head = self._head[: self.header.header_size]
        self._payload_len += len(piece)
        if self._payload_len > self.header.payload_size:
            raise _fail(
                self.source,
                f"oversized payload: trailing bytes after the {self.header.payload_size}-byte "
                "payload the header declares",
            )
        if self._keep:
            self._payload += piece


def parse_idx_header(data: bytes, source: str) -> IDXHeader:
    """Parse the IDX header at the start of `data` (raw or gzip; only the header is needed).

    Raises IDXError (message starts with `source`) on bad magic, an unknown type byte,
    an absurd size (> MAX_PAYLOAD_BYTES), a corrupt gzip stream or a truncated header.
    """
    head = data
    if data[:2] == GZIP_MAGIC:
        try:
            head = zlib.decompressobj(_GZIP_WBITS).decompress(data, _MAX_HEADER_BYTES)
        except zlib.error as exc:
            raise _fail(source, f"corrupt gzip stream ({exc})") from None
    header = _header_or_none(head, source)
    if header is None:
        need = _needed_header_bytes(head)
        raise _fail(source, f"truncated header: expected {need} bytes, got {len(head)}")
    return header


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode a whole IDX file held in memory (raw or gzip) into a native-endian array.

    The array has the header's dtype and shape. Raises IDXError naming `source`.
    """
    stream = IDXStream(source)
    stream.feed(data)
    stream.finish()
    return stream.array()


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(CHUNK_BYTES), b"")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip or raw, sniffed from its first bytes) into a native-endian array.

    Raises IDXError (naming the file) if it is malformed, DataError if it cannot be read.
    """
    path = Path(path)
    stream = IDXStream(str(path))
    try:
        for chunk in _read_chunks(path):
            stream.feed(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    stream.finish()
    return stream.array()


def _encode(array: np.ndarray, path: Path) -> bytes:
    native = array.dtype.newbyteorder("=")
    code = _CODE_OF.get(native)
    if code is None:
        raise IDXError(f"{path}: cannot write dtype {array.dtype} as IDX (supported: {_KNOWN})")
    if array.ndim > MAX_NDIM or any(d >= 2**32 for d in array.shape):
        raise IDXError(f"{path}: shape {array.shape} does not fit an IDX header")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(native.newbyteorder(">")).tobytes()


def _write_body(fileobj: Any, data: bytes, compress: bool) -> None:
    if not compress:
        fileobj.write(data)
        return
    with gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0) as gz:
        gz.write(data)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzip-compressed when `path` ends in ``.gz``.

    The write is atomic (temp file in the same folder, fsync, os.replace).
    Raises IDXError for a dtype or shape IDX cannot hold, DataError if the path is unwritable.
    """
    path = Path(path)
    data = _encode(np.asarray(array), path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            _write_body(f, data, compress=path.name.endswith(".gz"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
