"""Variable-length integers (RFC 9000 §16), as used by Binary HTTP and Oblivious HTTP.

The two high bits of the first byte give the length (1, 2, 4 or 8 bytes); the rest, in
network byte order, is the value.
"""

from __future__ import annotations

from ohttp.errors import MalformedError

__all__ = ["MAX_VARINT", "decode_varint", "encode_varint"]

MAX_VARINT = (1 << 62) - 1

# Value masks for 1-, 2-, 4- and 8-byte encodings: the two length bits are dropped.
_MASKS = {1: 0x3F, 2: 0x3FFF, 4: 0x3FFF_FFFF, 8: MAX_VARINT}


def encode_varint(value: int) -> bytes:
    """Encode ``value`` on the fewest bytes (RFC 9000 §16). ValueError outside 0..2**62-1."""
    if value < 0x40:
        if value < 0:
            raise ValueError("varint out of range")
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x4000_0000:
        return (value | 0x8000_0000).to_bytes(4, "big")
    if value <= MAX_VARINT:
        return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")
    raise ValueError("varint out of range")


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode the integer at ``offset``; return ``(value, new_offset)``.

    Non-minimal encodings are accepted (RFC 9000 §16 does not require the shortest form).
    Raises ``MalformedError`` when ``data`` ends before the integer does.
    """
    if offset < 0 or offset >= len(data):
        raise MalformedError("truncated variable-length integer")
    first = data[offset]
    size = 1 << (first >> 6)
    end = offset + size
    if size == 1:
        return first, end
    if end > len(data):
        raise MalformedError("truncated variable-length integer")
    if size == 2:
        return ((first & 0x3F) << 8) | data[offset + 1], end
    return int.from_bytes(data[offset:end], "big") & _MASKS[size], end
