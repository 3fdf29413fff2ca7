"""The IDX reader and writer, on hand-built bytes and round trips."""

from __future__ import annotations

import gzip
import math
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcgrad.data import IDXHeader, IDXStream, parse_idx, parse_idx_header, read_idx, write_idx
from fcgrad.errors import DataError, IDXError

# type byte -> dtype, from the IDX format description (not from the package).
TYPE_BYTES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.int16,
    0x0C: np.int32,
    0x0D: np.float32,
    0x0E: np.float64,
}


def idx_bytes(type_byte: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """Hand-built IDX file: 00 00 type ndim, big-endian uint32 dims, payload."""
    return bytes([0, 0, type_byte, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def sample(dtype: type) -> np.ndarray:
    values = np.arange(-12, 12).reshape(2, 3, 4)
    if np.dtype(dtype).kind == "u":
        values = values + 12
    if np.dtype(dtype).kind == "f":
        values = values / 7.0
    return values.astype(dtype)


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("dtype", list(TYPE_BYTES.values()), ids=lambda t: np.dtype(t).name)
def test_round_trip_every_dtype(tmp_path: Path, dtype: type, suffix: str) -> None:
    array = sample(dtype)
    path = tmp_path / f"a{suffix}"
    write_idx(path, array)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix.endswith(".gz") else b"\0\0")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left


def test_write_idx_bytes_match_the_format(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    write_idx(path, np.array([[1, -2, 3]], dtype=np.int16))
    assert path.read_bytes() == idx_bytes(0x0B, (1, 3), b"\x00\x01\xff\xfe\x00\x03")


def test_gzip_is_sniffed_not_named(tmp_path: Path) -> None:
    raw = idx_bytes(0x08, (3,), b"\x01\x02\x03")
    named_gz_but_raw = tmp_path / "raw.gz"
    named_gz_but_raw.write_bytes(raw)
    named_raw_but_gz = tmp_path / "gz.idx"
    named_raw_but_gz.write_bytes(gzip.compress(raw))
    for path in (named_gz_but_raw, named_raw_but_gz):
        np.testing.assert_array_equal(read_idx(path), [1, 2, 3])


def test_hand_written_header_parses() -> None:
    data = idx_bytes(0x0C, (2, 3), struct.pack(">6i", 1, -2, 3, -4, 5, 2**31 - 1))
    header = parse_idx_header(data, "hand.idx")
    assert header == IDXHeader(np.dtype(np.int32), (2, 3), 12, 24)
    array = parse_idx(data, "hand.idx")
    assert array.shape == (2, 3)
    assert array.dtype == np.dtype(np.int32) and array.dtype.isnative
    assert array.tolist() == [[1, -2, 3], [-4, 5, 2**31 - 1]]


def test_mnist_like_header_and_gzip_header_only() -> None:
    head = bytes.fromhex("00000803 0000ea60 0000001c 0000001c")  # train-images header
    header = parse_idx_header(head, "t.idx")
    assert (header.dtype, header.shape) == (np.dtype(np.uint8), (60000, 28, 28))
    assert (header.header_size, header.payload_size) == (16, 47040000)
    assert parse_idx_header(gzip.compress(head), "t.gz") == header


def test_float64_big_endian_values() -> None:
    data = idx_bytes(0x0E, (2,), struct.pack(">2d", 1.5, -0.25))
    assert parse_idx(data, "f.idx").tolist() == [1.5, -0.25]


def test_zero_size_dimension() -> None:
    array = parse_idx(idx_bytes(0x0D, (0, 5), b""), "empty.idx")
    assert array.shape == (0, 5) and array.dtype == np.float32


BAD_FILES = {
    "bad magic": (b"<!DOCTYPE html><html>not idx</html>", "bad magic"),
    "bad magic second byte": (b"\x00\x01\x08\x01\x00\x00\x00\x01\x00", "bad magic"),
    "unknown type": (idx_bytes(0x0A, (1,), b"\x00"), "unknown IDX type byte 0x0A"),
    "truncated payload": (
        idx_bytes(0x08, (2, 5), b"\x01" * 7),
        "truncated payload: expected 10 bytes, got 7",
    ),
    "truncated multi-byte payload": (
        idx_bytes(0x0C, (3,), b"\x00" * 11),
        "truncated payload: expected 12 bytes, got 11",
    ),
    "trailing bytes": (idx_bytes(0x08, (2,), b"\x01\x02\x03"), "trailing bytes"),
    "truncated header": (b"\x00\x00\x08\x03\x00\x00", "truncated header: expected 16 bytes"),
    "empty file": (b"", "truncated header: expected 4 bytes, got 0"),
    "absurd size": (idx_bytes(0x08, (2**32 - 1, 2**32 - 1, 2**32 - 1), b""), "absurd size"),
    "absurd float64 size": (idx_bytes(0x0E, (2**28 + 1,), b""), "absurd size"),
}


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_malformed_file_raises_idx_error_naming_it(tmp_path: Path, case: str, suffix: str) -> None:
    data, expected = BAD_FILES[case]
    path = tmp_path / f"broken-{case.replace(' ', '-')}{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_parse_idx_names_the_source(case: str) -> None:
    data, expected = BAD_FILES[case]
    with pytest.raises(IDXError, match=r"^memory://blob: ") as info:
        parse_idx(data, "memory://blob")
    assert expected in str(info.value)


def test_absurd_header_rejected_by_header_parser() -> None:
    with pytest.raises(IDXError, match="absurd size"):
        parse_idx_header(idx_bytes(0x0B, (2**31,), b""), "big.idx")


def gz_of_mnist_like() -> bytes:
    return gzip.compress(idx_bytes(0x08, (4, 4), bytes(range(16))))


@pytest.mark.parametrize(
    ("name", "mangle", "expected"),
    [
        ("cut", lambda gz: gz[: len(gz) // 2], "corrupt gzip stream"),
        ("crc", lambda gz: gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:], "corrupt gzip stream"),
        ("deflate", lambda gz: gz[:10] + b"\xff" * 8 + gz[18:], "corrupt gzip stream"),
        ("header-only", lambda gz: gz[:2], "corrupt gzip stream"),
        ("garbage-after", lambda gz: gz + b"junk!", "corrupt gzip stream"),
    ],
)
def test_corrupt_gzip_raises_idx_error(tmp_path: Path, name: str, mangle, expected: str) -> None:
    path = tmp_path / f"{name}.gz"
    path.write_bytes(mangle(gz_of_mnist_like()))
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_multi_member_gzip_reads_as_one_stream(tmp_path: Path) -> None:
    raw = idx_bytes(0x08, (4,), b"\x09\x08\x07\x06")
    path = tmp_path / "two-members.gz"
    path.write_bytes(gzip.compress(raw[:6]) + gzip.compress(raw[6:]))
    assert read_idx(path).tolist() == [9, 8, 7, 6]


def test_gzip_bomb_is_stopped_by_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (10,), b"\x00" * (8 << 20))))
    with pytest.raises(IDXError, match="trailing bytes"):
        read_idx(path)


def test_missing_file_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.idx.gz"
    with pytest.raises(DataError, match=r"nope\.idx\.gz"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(IDXError, match="bool"):
        write_idx(tmp_path / "b.idx", np.array([True]))
    assert list(tmp_path.iterdir()) == []


def test_write_idx_into_missing_folder_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot write"):
        write_idx(tmp_path / "no" / "such" / "x.idx", np.zeros(3, np.uint8))


def test_write_idx_replaces_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "x.idx.gz"
    write_idx(path, np.zeros(3, np.uint8))
    write_idx(path, np.arange(5, dtype=np.int16))
    assert read_idx(path).tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir()] == ["x.idx.gz"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_idx_error(data: bytes) -> None:
    for blob in (data, gzip.compress(data), b"\0\0" + data, b"\0\0\x08" + data):
        try:
            array = parse_idx(blob, "random")
        except IDXError as exc:
            assert str(exc).startswith("random: ")
        else:
            assert isinstance(array, np.ndarray)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(TYPE_BYTES)),
    st.lists(st.integers(0, 4), min_size=0, max_size=3),
    st.integers(-3, 3),
)
def test_payload_length_is_checked_exactly(type_byte: int, dims: list[int], delta: int) -> None:
    itemsize = np.dtype(TYPE_BYTES[type_byte]).itemsize
    n = int(np.prod(dims)) * itemsize
    data = idx_bytes(type_byte, tuple(dims), b"\x01" * max(0, n + delta))
    if n + delta == n or (delta < 0 and n == 0):
        assert parse_idx(data, "h").shape == tuple(dims)
    else:
        with pytest.raises(IDXError, match=r"truncated payload|trailing bytes"):
            parse_idx(data, "h")


# ----------------------------------------------------------------------------- fuzzing headers

dims_strategy = st.lists(
    st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1)), min_size=0, max_size=80
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.sampled_from(sorted(TYPE_BYTES)), st.integers(0, 255)),
    dims_strategy,
    st.booleans(),
    st.binary(max_size=96),
    st.booleans(),
)
def test_random_headers_only_raise_idx_error(
    type_byte: int, dims: list[int], exact: bool, payload: bytes, compress: bool
) -> None:
    # up to 80 dimensions (IDX allows 255, numpy 32 or 64), zero and huge sizes; the
    # payload is random or, where that is small, exactly as long as the header says
    itemsize = np.dtype(TYPE_BYTES.get(type_byte, np.uint8)).itemsize
    n = math.prod(dims) * itemsize
    if exact and n <= 4096:
        payload = bytes(n)
    data = idx_bytes(type_byte, tuple(dims), payload)
    blob = gzip.compress(data) if compress else data
    try:
        array = parse_idx(blob, "fuzz")
    except IDXError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
        return
    assert type_byte in TYPE_BYTES
    assert array.shape == tuple(dims) and array.dtype == np.dtype(TYPE_BYTES[type_byte])
    assert array.nbytes == len(payload)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(TYPE_BYTES)),
    st.lists(st.integers(2**16, 2**32 - 1), min_size=2, max_size=6),
    st.binary(max_size=64),
)
def test_huge_header_is_rejected_before_any_allocation(
    type_byte: int, dims: list[int], payload: bytes
) -> None:
    # every such shape claims more than MAX_PAYLOAD_BYTES; the reader must say so from the
    # header alone, before it allocates (or decompresses) anything of that size
    stream = IDXStream("huge", keep=True)
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="absurd size"):
            stream.feed(idx_bytes(type_byte, tuple(dims), payload))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_large_but_allowed_claim_allocates_only_what_arrives() -> None:
    # 2 GiB claimed (the limit), 1 KiB sent: a truncated payload, not a 2 GiB buffer
    stream = IDXStream("big", keep=True)
    tracemalloc.start()
    try:
        stream.feed(gzip.compress(idx_bytes(0x08, (2**15, 2**16), b"\x07" * 1024)))
        with pytest.raises(IDXError, match="truncated payload: expected 2147483648 bytes"):
            stream.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ((1,) * 33, "33 dimensions (at most 32)"),  # numpy cannot hold the array
        ((1,) * 255, "255 dimensions"),
        ((0, 2**32 - 1, 2**32 - 1), "absurd size"),  # empty, but no numpy shape
    ],
)
def test_headers_numpy_cannot_represent_are_idx_errors(
    dims: tuple[int, ...], expected: str
) -> None:
    data = idx_bytes(0x08, dims, b"\x01" if 0 not in dims else b"")
    with pytest.raises(IDXError, match=re.escape(expected)):
        parse_idx(data, "dims")
    with pytest.raises(IDXError, match=re.escape(expected)):
        parse_idx_header(data, "dims")
