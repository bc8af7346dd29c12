"""Chunked OHTTP against the real `ohttp gateway` (checklist D4 C1-C8, A9.62-A9.66).

Requests are built with ``ohttp.chunked`` and then broken in exactly one place. An "error"
is any answer other than a complete, decryptable, successful chunked response: an outer 4xx,
or a response stream cut off before its final chunk (chunked-08 §7.1). Nothing may reach the
origin complete (no commit) unless the request ended with a valid final chunk.

If the gateway does not serve ``message/ohttp-chunked-req`` (it answers 415), every test here
is skipped with that reason.
"""

from __future__ import annotations

import http.client
import os
import random
import uuid
from dataclasses import dataclass

import pytest

from ohttp import bhttp
from ohttp.chunked import ChunkedRequestEncoder
from ohttp.errors import OHTTPError
from ohttp.varint import decode_varint, encode_varint
from tests.support import LOOPBACK

from .conftest import GATEWAY_PATH, HTTP_TIMEOUT, Gateway, Relay, seal

CHUNKED_REQ = "message/ohttp-chunked-req"
CHUNKED_RES = "message/ohttp-chunked-res"
MAX_CHUNK = 1 << 14
N_TAG = 16


@dataclass(frozen=True)
class Outcome:
    status: int
    content_type: str | None
    inner: bhttp.Response | None  # None: the response was not a complete chunked message

    @property
    def succeeded(self) -> bool:
        return self.status == 200 and self.inner is not None and self.inner.status < 400


def post_chunked(gateway: Gateway, body: bytes) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", GATEWAY_PATH, body=body, headers={"Content-Type": CHUNKED_REQ})
        response = conn.getresponse()
        try:
            data = response.read()
        except http.client.IncompleteRead as cut:  # the gateway broke the message off
            data = cut.partial
        return response.status, response.getheader("Content-Type"), data
    finally:
        conn.close()


def outcome(gateway: Gateway, encoder: ChunkedRequestEncoder, body: bytes) -> Outcome:
    status, content_type, data = post_chunked(gateway, body)
    if status != 200:
        return Outcome(status, content_type, None)
    decoder = encoder.response_decoder()
    try:
        plaintext = b"".join(decoder.feed(data)) + b"".join(decoder.close())
        return Outcome(status, content_type, bhttp.decode_response(plaintext))
    except OHTTPError:
        return Outcome(status, content_type, None)


def unique_path() -> bytes:
    return b"/chunked/" + uuid.uuid4().hex.encode()


def inner_bytes(gateway: Gateway, path: bytes, content: bytes = b"chunked body") -> bytes:
    request = gateway.inner(path, method=b"POST", content=content)
    return bhttp.encode_request(request, indeterminate=True)


def split3(data: bytes) -> tuple[bytes, bytes, bytes]:
    third = len(data) // 3
    return data[:third], data[third : 2 * third], data[2 * third :]


def unframe(chunk: bytes) -> bytes:
    """The sealed bytes of one non-final chunk, without its length prefix."""
    length, start = decode_varint(chunk)
    assert len(chunk) == start + length
    return chunk[start:]


@pytest.fixture(scope="module")
def chunked_gateway(gateway: Gateway) -> Gateway:
    encoder = ChunkedRequestEncoder(gateway.key.config)
    body = encoder.header() + encoder.final(inner_bytes(gateway, b"/chunked-probe"))
    status, _, _ = post_chunked(gateway, body)
    assert status == 200, "the gateway must serve message/ohttp-chunked-req"
    return gateway


def assert_error_and_nothing_committed(gateway: Gateway, result: Outcome, path: bytes) -> None:
    assert not result.succeeded, result
    assert result.status == 200 or 400 <= result.status < 500, result.status
    assert gateway.origin.count(path.decode()) == 0


# --- C8 / A9.62: the happy path and the media type ------------------------------------------


def test_c8_chunked_request_gets_a_chunked_response(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    body = encoder.header() + encoder.chunk(a) + encoder.chunk(b) + encoder.final(c)
    result = outcome(chunked_gateway, encoder, body)
    assert result.content_type == CHUNKED_RES
    assert result.inner is not None and result.inner.status == 200
    assert chunked_gateway.origin.count(path.decode()) == 1


# --- C1-C5: broken streams ------------------------------------------------------------------


def test_c1_stream_ending_after_a_non_final_chunk_is_an_error(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, _ = split3(inner_bytes(chunked_gateway, path))
    body = encoder.header() + encoder.chunk(a) + encoder.chunk(b)  # no final chunk
    result = outcome(chunked_gateway, encoder, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


def test_c2_empty_non_final_chunk_is_a_decryption_error(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    empty = encoder._seal(b"", b"")  # the public API refuses to build this chunk
    body = (
        encoder.header()
        + encoder.chunk(a)
        + encode_varint(len(empty))
        + empty
        + encoder.chunk(b)
        + encoder.final(c)
    )
    result = outcome(chunked_gateway, encoder, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


def test_c3_final_chunk_sealed_without_final_aad_is_an_error(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    header, first = encoder.header(), encoder.chunk(a)
    last = unframe(encoder.chunk(b + c))  # sealed with the empty AAD
    body = header + first + b"\x00" + last
    result = outcome(chunked_gateway, encoder, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


def test_c3_non_final_chunk_sealed_with_final_aad_is_an_error(chunked_gateway: Gateway) -> None:
    # Two encoders with one ephemeral key share a context: B seals chunk 0 as "final".
    path = unique_path()
    config = chunked_gateway.key.config
    ephemeral = os.urandom(32)
    sender = ChunkedRequestEncoder(config, ephemeral_private_key=ephemeral)
    forger = ChunkedRequestEncoder(config, ephemeral_private_key=ephemeral)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    header = sender.header()
    assert forger.header() == header
    wrong = forger.final(a)[1:]  # drop the final indicator: sealed with AAD "final"
    sender.chunk(a)  # advance the sender past chunk 0
    body = header + encode_varint(len(wrong)) + wrong + sender.chunk(b) + sender.final(c)
    result = outcome(chunked_gateway, sender, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


@pytest.mark.parametrize("order", ["reordered", "duplicated", "dropped"])
def test_c4_chunks_out_of_sequence_are_an_error(chunked_gateway: Gateway, order: str) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    header, first, second = encoder.header(), encoder.chunk(a), encoder.chunk(b)
    final = encoder.final(c)
    middle = {
        "reordered": second + first,
        "duplicated": first + first + second,
        "dropped": first,
    }[order]
    result = outcome(chunked_gateway, encoder, header + middle + final)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


def test_c5_bytes_after_the_final_chunk_are_an_error(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    body = encoder.header() + encoder.chunk(a) + encoder.chunk(b) + encoder.final(c) + b"\x00"
    result = outcome(chunked_gateway, encoder, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)


# --- C6-C7: chunk lengths -------------------------------------------------------------------


@pytest.mark.parametrize("length", [MAX_CHUNK + N_TAG + 1, 2**62 - 1])
def test_c6_oversized_chunk_length_is_an_error(chunked_gateway: Gateway, length: int) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, _, _ = split3(inner_bytes(chunked_gateway, path))
    body = encoder.header() + encoder.chunk(a) + encode_varint(length) + bytes(64)
    result = outcome(chunked_gateway, encoder, body)
    assert_error_and_nothing_committed(chunked_gateway, result, path)
    assert chunked_gateway.process.process.poll() is None


def test_c6_chunk_of_exactly_two_to_the_fourteen_is_accepted(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    inner = inner_bytes(chunked_gateway, path, content=os.urandom(MAX_CHUNK + 5000))
    header, first = encoder.header(), encoder.chunk(inner[:MAX_CHUNK])
    assert len(unframe(first)) == MAX_CHUNK + N_TAG  # one chunk, exactly 2^14 of plaintext
    body = header + first + encoder.final(inner[MAX_CHUNK:])
    result = outcome(chunked_gateway, encoder, body)
    assert result.succeeded, result
    assert chunked_gateway.origin.count(path.decode()) == 1


def test_c7_non_minimal_chunk_lengths_are_accepted(chunked_gateway: Gateway) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    header = encoder.header()
    chunks = [unframe(encoder.chunk(part)) for part in (a, b)]
    long_form = b"".join((0xC0 << 56 | len(s)).to_bytes(8, "big") + s for s in chunks)
    body = header + long_form + encoder.final(c)
    result = outcome(chunked_gateway, encoder, body)
    assert result.succeeded, result
    assert chunked_gateway.origin.count(path.decode()) == 1


# --- A9.64: labels differ -------------------------------------------------------------------


def test_a9_64_plain_encapsulation_under_the_chunked_type_is_an_error(
    chunked_gateway: Gateway,
) -> None:
    path = unique_path()
    body, _ = seal(chunked_gateway, chunked_gateway.inner(path))
    status, _, _ = post_chunked(chunked_gateway, body)
    assert status == 200 or 400 <= status < 500
    assert chunked_gateway.origin.count(path.decode()) == 0


# --- G12 for the chunked type, and the relay path -------------------------------------------


def test_g12_chunked_random_bodies_and_bit_flips_never_get_5xx(chunked_gateway: Gateway) -> None:
    rng = random.Random(2026)
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, b"/chunked-fuzz"))
    valid = encoder.header() + encoder.chunk(a) + encoder.chunk(b) + encoder.final(c)
    statuses = set()
    for index in range(400):
        if index % 2:
            body = bytearray(valid)
            bit = rng.randrange(len(valid) * 8)
            body[bit // 8] ^= 1 << (bit % 8)
        else:
            body = bytearray(rng.randbytes(rng.randrange(1, 300)))
        statuses.add(post_chunked(chunked_gateway, bytes(body))[0])
    # 200 only where the stream was already answering when the error was found (then cut off).
    assert all(status == 200 or 400 <= status < 500 for status in statuses), statuses
    assert chunked_gateway.process.process.poll() is None


def test_c8_chunked_request_through_the_relay(chunked_gateway: Gateway, relay: Relay) -> None:
    path = unique_path()
    encoder = ChunkedRequestEncoder(chunked_gateway.key.config)
    a, b, c = split3(inner_bytes(chunked_gateway, path))
    body = encoder.header() + encoder.chunk(a) + encoder.chunk(b) + encoder.final(c)
    conn = http.client.HTTPConnection(LOOPBACK, relay.port, timeout=HTTP_TIMEOUT)
    try:
        headers = {"Content-Type": CHUNKED_REQ, "Incremental": "?1"}
        conn.request("POST", "/real", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert (response.status, response.getheader("Content-Type")) == (200, CHUNKED_RES)
    finally:
        conn.close()
    decoder = encoder.response_decoder()
    inner = bhttp.decode_response(b"".join(decoder.feed(data)) + b"".join(decoder.close()))
    assert inner.status == 200
    assert chunked_gateway.origin.count(path.decode()) == 1
