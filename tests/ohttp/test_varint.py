"""RFC 9000 §16 variable-length integers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp.errors import MalformedError
from ohttp.varint import MAX_VARINT, decode_varint, encode_varint

# RFC 9000 Appendix A.1 sample encodings, plus the boundaries of each of the 4 sizes.
MINIMAL = [
    ("c2197c5eff14e88c", 151_288_809_941_952_652),
    ("9d7f3e7d", 494_878_333),
    ("7bbd", 15_293),
    ("25", 37),
    ("00", 0),
    ("3f", 63),
    ("4040", 64),
    ("7fff", 16_383),
    ("80004000", 16_384),
    ("bfffffff", (1 << 30) - 1),
    ("c000000040000000", 1 << 30),
    ("ffffffffffffffff", MAX_VARINT),
]


@pytest.mark.parametrize(("hex_value", "value"), MINIMAL)
def test_minimal_encoding_and_decoding(hex_value: str, value: int) -> None:
    data = bytes.fromhex(hex_value)
    assert encode_varint(value) == data
    assert decode_varint(data) == (value, len(data))


@pytest.mark.parametrize(
    "hex_value", ["4025", "80000025", "c000000000000025"]
)  # RFC 9000 Appendix A.1: 0x4025 also decodes to 37
def test_non_minimal_encodings_are_accepted(hex_value: str) -> None:
    data = bytes.fromhex(hex_value)
    assert decode_varint(data) == (37, len(data))


def test_decode_at_offset_returns_new_offset() -> None:
    data = b"\xff" + bytes.fromhex("7bbd") + b"\x25"
    assert decode_varint(data, 1) == (15_293, 3)
    assert decode_varint(memoryview(data), 3) == (37, 4)


@pytest.mark.parametrize("hex_value", ["", "40", "80ffff", "c0000000000000"])
def test_truncated_raises_malformed(hex_value: str) -> None:
    with pytest.raises(MalformedError):
        decode_varint(bytes.fromhex(hex_value))


def test_offset_past_end_raises_malformed() -> None:
    with pytest.raises(MalformedError):
        decode_varint(b"\x01", 1)
    with pytest.raises(MalformedError):
        decode_varint(b"\x01", -1)


@pytest.mark.parametrize("value", [-1, MAX_VARINT + 1, 1 << 64])
def test_out_of_range_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_varint(value)


@given(st.integers(0, MAX_VARINT), st.binary(max_size=4), st.binary(max_size=4))
@settings(deadline=None)
def test_round_trip_with_surrounding_bytes(value: int, before: bytes, after: bytes) -> None:
    encoded = encode_varint(value)
    expected_size = 1 if value < 64 else 2 if value < 1 << 14 else 4 if value < 1 << 30 else 8
    assert len(encoded) == expected_size
    assert decode_varint(before + encoded + after, len(before)) == (
        value,
        len(before) + expected_size,
    )


@given(st.integers(0, MAX_VARINT), st.sampled_from([1, 2, 4, 8]))
@settings(deadline=None)
def test_any_size_that_fits_decodes(value: int, size: int) -> None:
    if value >= 1 << (8 * size - 2):
        return
    prefix = {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[size]
    raw = value.to_bytes(size, "big")
    data = bytes([raw[0] | prefix]) + raw[1:]
    assert decode_varint(data) == (value, size)
