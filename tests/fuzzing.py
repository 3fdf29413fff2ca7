"""Damage for the fuzz tests of files fcgrad reads as hostile (checkpoints, `--inputs`)."""

from __future__ import annotations

from hypothesis import strategies as st


def damaged(data: st.DataObject, blob: bytes) -> bytes:
    """`blob` with 1 to 8 random changes drawn from `data`: a byte overwritten, up to 64
    bytes cut out, up to 16 bytes inserted, or the rest cut off (a partial copy), anywhere
    (an empty result stops early)."""
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(out) - 1))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if kind == "flip":
            out[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del out[at : at + data.draw(st.integers(1, 64))]
        elif kind == "truncate":
            del out[at:]
        else:
            out[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        if not out:
            break
    return bytes(out)
