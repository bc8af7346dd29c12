"""ohttp.padding: the size classes, message padding, and chunk cutting (sans-IO)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp import bhttp
from ohttp.padding import (
    LINEAR_LIMIT,
    MIN_CLASS,
    ChunkPadder,
    Padding,
    class_floor,
    pad_message,
    padded_size,
    whole_chunks,
)

# The classes written out, independently of the code that computes them.
FIRST_CLASSES = [256 * k for k in range(1, 17)] + [8064, 16128, 32256, 64512]


def _is_class(size: int) -> bool:
    if size <= LINEAR_LIMIT:
        return size >= MIN_CLASS and size % 256 == 0
    # A power of two less 1/64th: 63 * 2**j, from 8064 up.
    return size % 63 == 0 and (size // 63) & (size // 63 - 1) == 0 and size >= 8064


def test_the_classes() -> None:
    sizes = sorted({padded_size(n) for n in range(0, 64513)})
    assert sizes == FIRST_CLASSES
    assert sizes[0] >= 256  # short messages all look alike
    assert min(b - a for a, b in pairwise(sizes)) >= 64


@pytest.mark.parametrize(
    ("size", "padded"),
    [(0, 256), (1, 256), (256, 256), (257, 512), (1000, 1024), (1100, 1280), (4096, 4096),
     (4097, 8064), (8064, 8064), (8065, 16128), (16384, 32256), (10**6, 1032192)],
)  # fmt: skip
def test_padded_size(size: int, padded: int) -> None:
    assert padded_size(size) == padded


@given(st.integers(0, 1 << 26))
def test_padded_size_is_the_smallest_class_that_fits(size: int) -> None:
    padded = padded_size(size)
    assert padded >= size and _is_class(padded)
    assert class_floor(padded) == padded
    assert class_floor(padded - 1) < max(size, MIN_CLASS)  # no smaller class fits


@given(st.integers(0, 1 << 26))
def test_class_floor_is_the_largest_class_within(size: int) -> None:
    floor = class_floor(size)
    if size < MIN_CLASS:
        assert floor == 0
    else:
        assert _is_class(floor) and floor <= size < padded_size(size + 1) * 2
        assert padded_size(floor + 1) > size  # the next class does not fit


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        padded_size(-1)


def test_unknown_padding_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        pad_message(b"x", "some")
    with pytest.raises(ValueError):
        ChunkPadder("some")


REQUEST = bhttp.Request(b"POST", b"https", b"a.example", b"/", ((b"a", b"b"),), b"x" * 300)
RESPONSE = bhttp.Response(200, ((b"content-type", b"text/plain"),), b"y" * 5000, ((b"t", b"1"),))


@pytest.mark.parametrize("indeterminate", [False, True])
@pytest.mark.parametrize("truncate", [False, True])
def test_padded_messages_decode_to_the_same_message(indeterminate: bool, truncate: bool) -> None:
    """RFC 9292 §3.8: the decoder accepts and ignores the padding, in both framings."""
    options = {"indeterminate": indeterminate, "truncate": truncate}
    request = pad_message(bhttp.encode_request(REQUEST, **options))
    response = pad_message(bhttp.encode_response(RESPONSE, **options))
    assert len(request) == 512 and len(response) == 8064
    assert bhttp.decode_request(request) == REQUEST
    assert bhttp.decode_response(response) == RESPONSE
    bare = bhttp.Request(b"GET", b"https", b"a", b"/")  # truncated: zeros follow the path
    assert bhttp.decode_request(pad_message(bhttp.encode_request(bare, **options))) == bare


def test_padding_none_leaves_the_message_alone() -> None:
    encoded = bhttp.encode_request(REQUEST)
    assert pad_message(encoded, Padding.NONE) is encoded
    assert pad_message(encoded, "none") is encoded


def _cut(padder: ChunkPadder, pieces: list[bytes], tail: bytes) -> tuple[list[bytes], bytes]:
    chunks = [chunk for piece in pieces for chunk in padder.feed(piece)]
    return chunks, padder.final(tail)


@given(st.lists(st.binary(max_size=40_000), max_size=12), st.binary(max_size=600))
@settings(max_examples=60, deadline=None)
def test_chunks_are_classes_and_carry_the_stream(pieces: list[bytes], tail: bytes) -> None:
    chunks, final = _cut(ChunkPadder(), pieces, tail)
    stream = b"".join(pieces) + tail
    assert all(_is_class(len(chunk)) and len(chunk) <= 16128 for chunk in chunks)
    assert _is_class(len(final))
    whole = b"".join(chunks) + final
    assert whole[: len(stream)] == stream
    assert whole[len(stream) :] == bytes(len(whole) - len(stream))  # only zeros added
    # What is held back never reaches the smallest class, so the final chunk stays small.
    assert len(final) <= padded_size(MIN_CLASS - 1 + len(tail))


def test_small_pieces_wait_for_a_class() -> None:
    padder = ChunkPadder()
    assert padder.feed(b"a" * 200) == []
    assert padder.feed(b"b" * 100) == [b"a" * 200 + b"b" * 56]
    assert padder.feed(b"") == []
    assert padder.final(b"end") == b"b" * 44 + b"end" + bytes(256 - 47)


def test_large_pieces_are_cut_at_the_chunk_size() -> None:
    padder = ChunkPadder()  # 16384 is not a class: chunks of at most 16128
    chunks = padder.feed(bytes(40_000))
    assert [len(chunk) for chunk in chunks] == [16128, 16128, 4096, 3584]
    assert padder.final() == bytes(256)  # 64 bytes held back, then padded
    with pytest.raises(ValueError, match="smallest class"):
        ChunkPadder(max_chunk=100)


def test_padding_none_sends_each_piece_at_once() -> None:
    padder = ChunkPadder(Padding.NONE)
    assert padder.feed(b"tok") == [b"tok"]
    assert padder.feed(b"") == []
    assert padder.final(b"end") == b"end"


def test_body_limits_keep_their_headroom() -> None:
    """A padded message plus the largest HPKE overhead (1688 bytes, ML-KEM-1024 + P-384) and
    the chunk framing stays under the power of two above its class."""
    for size in (600_000, 1_000_000, 20_000_000):
        padded = padded_size(size)
        limit = 1 << padded.bit_length()
        chunks = -(-padded // 16128)
        assert padded + 1688 + 20 * chunks < limit


@pytest.mark.parametrize("size", [0, 300, 16128, 20_000, 32256, 64512])
def test_whole_chunks(size: int) -> None:
    message = pad_message(bytes(range(256)) * (size // 256) + bytes(size % 256))
    *chunks, last = whole_chunks(message)
    assert b"".join([*chunks, last]) == message
    assert all(len(chunk) == 16128 for chunk in chunks)
    assert _is_class(len(last)) and len(last) <= 16128
    assert whole_chunks(b"") == [b""]
