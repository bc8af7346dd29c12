"""Chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08): the Appendix A example byte for byte in
both directions, the D4 rows C1-C8 of the security checklist, labels, limits, single use,
truncation and bit flips, and round trips on every suite with random chunkings."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ohttp import _hpke
from ohttp.chunked import (
    CHUNKED_REQUEST_MEDIA_TYPE,
    CHUNKED_RESPONSE_MEDIA_TYPE,
    DEFAULT_MAX_CHUNK,
    ChunkedRequestDecoder,
    ChunkedRequestEncoder,
    ChunkedResponseDecoder,
    ChunkedResponseEncoder,
    ChunkLimits,
)
from ohttp.encapsulation import (
    CHUNKED_REQUEST_LABEL,
    CHUNKED_RESPONSE_LABEL,
    REQUEST_LABEL,
    RESPONSE_LABEL,
    decapsulate_request,
    encapsulate_request,
    request_header,
    request_info,
)
from ohttp.errors import (
    ChunkedError,
    ContextUsedError,
    DecryptionError,
    EncapsulationError,
    OHTTPError,
    UnknownKeyError,
    UnsupportedSuiteError,
)
from ohttp.keys import AEAD, KDF, KEM, GatewayKey, KeyRing, SymmetricSuite
from ohttp.varint import encode_varint

V = json.loads(
    (Path(__file__).parent.parent / "vectors" / "chunked_ohttp_draft08.json").read_text()
)
SUITES = tuple(SymmetricSuite(KDF(kdf), AEAD(aead)) for kdf, aead in V["key_config_suites"])
KEY = GatewayKey.from_private_bytes(
    V["key_id"], KEM.X25519, bytes.fromhex(V["gateway_private_key"]), SUITES
)
RING = KeyRing([KEY])
SUITE = _hpke.get_suite(0x20, 1, 1)
EPHEMERAL = bytes.fromhex(V["ephemeral_private_key"])
REQUEST = bytes.fromhex(V["request"])
RESPONSE = bytes.fromhex(V["response"])
HEADER = bytes.fromhex(V["request_header"])
ENC = bytes.fromhex(V["enc"])
REQUEST_PREFIX = HEADER + ENC
REQUEST_CHUNKS = [bytes.fromhex(chunk) for chunk in V["request_chunks"]]
ENC_REQUEST = REQUEST_PREFIX + b"".join(REQUEST_CHUNKS)
NONCE = bytes.fromhex(V["response_nonce"])
RESPONSE_CHUNKS = [bytes.fromhex(chunk) for chunk in V["response_chunks"]]
ENC_RESPONSE = NONCE + b"".join(RESPONSE_CHUNKS)
# The AEADs of the example (intermediates the vectors give): raw chunks sealed with them let
# tests build any hostile framing without going through the encoders.
REQUEST_AEAD = _hpke.AEADState(
    SUITE,
    bytes.fromhex(V["derived_intermediates"]["key"]),
    bytes.fromhex(V["derived_intermediates"]["base_nonce"]),
)
RESPONSE_AEAD = _hpke.AEADState(
    SUITE, bytes.fromhex(V["response_key"]), bytes.fromhex(V["response_base_nonce"])
)
OPAQUE = "request could not be decapsulated"
LIMITS = ChunkLimits()
FIXED_MESSAGES = {
    OPAQUE,
    "encapsulated request truncated",
    "encapsulated response truncated",
    "chunked message truncated",
    "chunk too large",
    "final chunk too large",
    "too many chunks",
}


def _example_encoder() -> ChunkedRequestEncoder:
    return ChunkedRequestEncoder(KEY.config, ephemeral_private_key=EPHEMERAL)


def _feed_all(
    decoder: ChunkedRequestDecoder | ChunkedResponseDecoder, pieces: Iterable[bytes]
) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        out += decoder.feed(piece)
    return out + decoder.close()


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _raw_chunks(aead: _hpke.AEADState, chunks: Iterable[tuple[bytes, bytes, bool]]) -> bytes:
    """Frame (plaintext, aad, is_final) chunks sealed with counter 0, 1, 2, ..."""
    out = b""
    for seq, (plaintext, aad, final) in enumerate(chunks):
        sealed = aad_seal(aead, seq, plaintext, aad)
        out += b"\x00" + sealed if final else encode_varint(len(sealed)) + sealed
    return out


def aad_seal(aead: _hpke.AEADState, seq: int, plaintext: bytes, aad: bytes) -> bytes:
    return aead.seal(seq, plaintext, aad)


def _raw_request(chunks: Iterable[tuple[bytes, bytes, bool]]) -> bytes:
    return REQUEST_PREFIX + _raw_chunks(REQUEST_AEAD, chunks)


def _raw_response(chunks: Iterable[tuple[bytes, bytes, bool]]) -> bytes:
    return NONCE + _raw_chunks(RESPONSE_AEAD, chunks)


def _decode_request(data: bytes, limits: ChunkLimits = LIMITS) -> list[bytes]:
    return _feed_all(ChunkedRequestDecoder(RING, limits=limits), [data])


def _decode_response(data: bytes, limits: ChunkLimits = LIMITS) -> list[bytes]:
    return _feed_all(_example_encoder().response_decoder(limits=limits), [data])


GOOD = [(REQUEST[:12], b"", False), (REQUEST[12:], b"", False), (b"", b"final", True)]


# --- Appendix A, byte for byte -------------------------------------------------------------


def test_vector_key_config_and_info() -> None:
    assert KEY.config.encode().hex() == V["key_config"]
    assert KEY.config.public_key.hex() == V["gateway_public_key"]
    assert request_header(1, 0x20, 1, 1) == HEADER
    assert request_info(CHUNKED_REQUEST_LABEL, HEADER).hex() == V["info"]


def test_vector_request_byte_for_byte() -> None:
    encoder = _example_encoder()
    produced = [encoder.header(), encoder.chunk(REQUEST[:12]), encoder.chunk(REQUEST[12:])]
    produced.append(encoder.final())
    assert produced == [REQUEST_PREFIX, *REQUEST_CHUNKS]
    assert len(b"".join(produced)) == V["encapsulated_request_length"]
    assert encoder.finished


def test_vector_request_intermediates() -> None:
    shared = KEY.hpke_private_key._decap(SUITE, ENC)
    assert shared.hex() == V["derived_intermediates"]["shared_secret"]
    # The chunks are the HPKE context's Seal with sequence numbers 0, 1, 2 (§6.1).
    assert _raw_request(GOOD) == ENC_REQUEST


def test_vector_request_decoded_whole_and_bytewise() -> None:
    expected = [REQUEST[:12], REQUEST[12:]]
    assert _decode_request(ENC_REQUEST) == expected
    decoder = ChunkedRequestDecoder(RING)
    assert _feed_all(decoder, _bytewise(ENC_REQUEST)) == expected
    assert decoder.complete
    assert decoder.key_id == 1


def test_enc_is_known_once_the_prefix_is_in() -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(REQUEST_PREFIX[:-1])
    assert decoder.enc == b""
    decoder.feed(REQUEST_PREFIX[-1:])
    assert decoder.enc == ENC


def test_plaintext_chunks_come_out_as_soon_as_complete() -> None:
    decoder = ChunkedRequestDecoder(RING)
    end_of_first = len(REQUEST_PREFIX) + len(REQUEST_CHUNKS[0])
    assert decoder.feed(ENC_REQUEST[: end_of_first - 1]) == []
    assert decoder.key_id == 1
    assert decoder.feed(ENC_REQUEST[end_of_first - 1 : end_of_first]) == [REQUEST[:12]]
    assert decoder.feed(ENC_REQUEST[end_of_first:]) == [REQUEST[12:]]
    assert not decoder.complete  # the final chunk is only known at the end of the stream
    assert decoder.close() == []
    assert decoder.complete


def test_vector_response_byte_for_byte() -> None:
    decoder = ChunkedRequestDecoder(RING)
    _feed_all(decoder, [ENC_REQUEST])
    encoder = decoder.response_encoder(response_nonce=NONCE)
    assert encoder.key_id == 1
    produced = [encoder.header(), encoder.chunk(RESPONSE[:1]), encoder.chunk(RESPONSE[1:])]
    produced.append(encoder.final())
    assert produced == [NONCE, *RESPONSE_CHUNKS]
    assert len(b"".join(produced)) == V["encapsulated_response_length"]


def test_vector_response_intermediates() -> None:
    context = KEY.hpke_private_key.receiver(SUITE, bytes.fromhex(V["info"])).setup(ENC)
    secret = context.export(CHUNKED_RESPONSE_LABEL, 16)
    assert secret.hex() == V["response_secret"]
    assert (ENC + NONCE).hex() == V["response_salt"]
    prk = _hpke.extract(SUITE.kdf_hash, ENC + NONCE, secret)
    assert prk.hex() == V["response_prk"]
    assert _hpke.expand(SUITE.kdf_hash, prk, b"key", 16).hex() == V["response_key"]
    assert _hpke.expand(SUITE.kdf_hash, prk, b"nonce", 12).hex() == V["response_base_nonce"]
    # §6.2: base nonce XOR counter (counter 2 gives ...44; adding would give ...48).
    assert [RESPONSE_AEAD.nonce(i).hex() for i in range(3)] == V["response_chunk_nonces"]
    chunks = [(RESPONSE[:1], b"", False), (RESPONSE[1:], b"", False), (b"", b"final", True)]
    assert _raw_response(chunks) == ENC_RESPONSE


def test_vector_response_decoded_whole_and_bytewise() -> None:
    assert _decode_response(ENC_RESPONSE) == [RESPONSE[:1], RESPONSE[1:]]
    decoder = _example_encoder().response_decoder()
    assert not decoder.complete
    assert _feed_all(decoder, _bytewise(ENC_RESPONSE)) == [RESPONSE[:1], RESPONSE[1:]]
    assert decoder.complete


def test_final_chunk_with_data_is_returned_by_close() -> None:
    encoder = _example_encoder()
    stream = encoder.chunk(b"a") + encoder.final(b"tail")
    decoder = ChunkedRequestDecoder(RING)
    assert decoder.feed(stream) == [b"a"]
    assert decoder.close() == [b"tail"]
    response = decoder.response_encoder()
    client = encoder.response_decoder()
    assert client.feed(response.final(b"only")) == []
    assert client.close() == [b"only"]


# --- D4 rows C1-C8 ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [len(REQUEST_PREFIX), len(ENC_REQUEST) - len(REQUEST_CHUNKS[2])])
def test_c1_request_ending_without_final_chunk(cut: int) -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(ENC_REQUEST[:cut])
    with pytest.raises(ChunkedError, match=r"^chunked message truncated$"):
        decoder.close()
    assert not decoder.complete


def test_c1_response_ending_without_final_chunk() -> None:
    decoder = _example_encoder().response_decoder()
    assert decoder.feed(ENC_RESPONSE[: -len(RESPONSE_CHUNKS[2])]) == [RESPONSE[:1], RESPONSE[1:]]
    with pytest.raises(ChunkedError):
        decoder.close()
    assert not decoder.complete


@pytest.mark.parametrize("cut", [0, 3, len(HEADER), len(REQUEST_PREFIX) - 1])
def test_c1_request_ending_inside_header_is_an_encapsulation_error(cut: int) -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(ENC_REQUEST[:cut])
    with pytest.raises(EncapsulationError):
        decoder.close()


def test_c1_response_ending_inside_nonce_is_an_encapsulation_error() -> None:
    decoder = _example_encoder().response_decoder()
    decoder.feed(NONCE[:-1])
    with pytest.raises(EncapsulationError):
        decoder.close()


def test_c2_empty_non_final_chunk_is_a_decryption_error() -> None:
    with pytest.raises(DecryptionError):
        _decode_request(_raw_request([(b"", b"", False), (b"x", b"final", True)]))
    with pytest.raises(DecryptionError):
        _decode_response(_raw_response([(b"", b"", False), (b"x", b"final", True)]))


@pytest.mark.parametrize("length", range(1, 17))
def test_c2_chunk_too_short_for_any_plaintext(length: int) -> None:
    with pytest.raises(DecryptionError, match=f"^{OPAQUE}$"):
        ChunkedRequestDecoder(RING).feed(REQUEST_PREFIX + encode_varint(length))


@pytest.mark.parametrize(
    "chunks",
    [
        [(REQUEST[:12], b"", False), (REQUEST[12:], b"", False), (b"", b"", True)],
        [(REQUEST[:12], b"final", False), (REQUEST[12:], b"", False), (b"", b"final", True)],
        [(REQUEST, b"", False), (b"", b"finaL", True)],
    ],
    ids=["final-with-empty-aad", "non-final-with-final-aad", "other-aad"],
)
def test_c3_wrong_aad(chunks: list[tuple[bytes, bytes, bool]]) -> None:
    with pytest.raises(DecryptionError):
        _decode_request(_raw_request(chunks))
    with pytest.raises(DecryptionError):
        _decode_response(_raw_response(chunks))


def _sealed_parts(aead: _hpke.AEADState) -> list[bytes]:
    """Three non-final framed chunks a, b, c with counters 0, 1, 2, and a final with 3."""
    parts = []
    for seq, text in enumerate([b"a", b"b", b"c"]):
        sealed = aead.seal(seq, text)
        parts.append(encode_varint(len(sealed)) + sealed)
    return [*parts, b"\x00" + aead.seal(3, b"", b"final")]


@pytest.mark.parametrize(
    "order", [(1, 0, 2, 3), (0, 0, 1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2, 2, 3)]
)
def test_c4_reordered_duplicated_dropped(order: tuple[int, ...]) -> None:
    request = _sealed_parts(REQUEST_AEAD)
    response = _sealed_parts(RESPONSE_AEAD)
    assert _decode_request(REQUEST_PREFIX + b"".join(request)) == [b"a", b"b", b"c"]
    with pytest.raises(DecryptionError):
        _decode_request(REQUEST_PREFIX + b"".join(request[i] for i in order))
    with pytest.raises(DecryptionError):
        _decode_response(NONCE + b"".join(response[i] for i in order))


@pytest.mark.parametrize("extra", [b"\x00", b"\x01x", REQUEST_CHUNKS[2]])
def test_c5_bytes_after_final_chunk(extra: bytes) -> None:
    with pytest.raises(DecryptionError):
        _decode_request(ENC_REQUEST + extra)
    with pytest.raises(DecryptionError):
        _decode_response(ENC_RESPONSE + extra)


@pytest.mark.parametrize("length", [DEFAULT_MAX_CHUNK + 17, 1 << 20, (1 << 30) - 1, (1 << 62) - 1])
def test_c6_oversized_length_rejected_before_its_bytes(length: int) -> None:
    decoder = ChunkedRequestDecoder(RING)
    with pytest.raises(ChunkedError, match=r"^chunk too large$"):
        decoder.feed(REQUEST_PREFIX + encode_varint(length))
    with pytest.raises(ChunkedError):  # terminal: the same error again
        decoder.feed(b"more")
    with pytest.raises(ChunkedError):
        _example_encoder().response_decoder().feed(NONCE + encode_varint(length))


def test_c6_exactly_two_to_the_fourteen_accepted_one_more_refused() -> None:
    full = b"\xa5" * DEFAULT_MAX_CHUNK
    assert _decode_request(_raw_request([(full, b"", False), (b"", b"final", True)])) == [full]
    assert _decode_request(_raw_request([(full, b"final", True)])) == [full]
    assert _decode_response(_raw_response([(full, b"", False), (full, b"final", True)])) == [
        full,
        full,
    ]
    over = full + b"!"
    with pytest.raises(ChunkedError, match=r"^chunk too large$"):
        _decode_request(_raw_request([(over, b"", False), (b"", b"final", True)]))
    with pytest.raises(ChunkedError, match=r"^final chunk too large$"):
        _decode_response(_raw_response([(over, b"final", True)]))
    larger = ChunkLimits(max_chunk=len(over), max_final_chunk=len(over))
    stream = _raw_request([(over, b"", False), (over, b"final", True)])
    assert _decode_request(stream, larger) == [over, over]


def test_c6_final_chunk_bounded_while_buffering() -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(REQUEST_PREFIX + b"\x00")
    for _ in range(DEFAULT_MAX_CHUNK // 1024):
        decoder.feed(b"\x00" * 1024)
    decoder.feed(b"\x00" * 16)  # exactly the largest final chunk: still buffered
    with pytest.raises(ChunkedError, match=r"^final chunk too large$"):
        decoder.feed(b"\x00")


def test_c6_limits_below_the_minimum_are_refused() -> None:
    with pytest.raises(ValueError):
        ChunkLimits(max_chunk=DEFAULT_MAX_CHUNK - 1)
    with pytest.raises(ValueError):
        ChunkLimits(max_final_chunk=100)


def _non_minimal(value: int, size: int) -> bytes:
    marker = {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[size]
    encoded = bytearray(value.to_bytes(size, "big"))
    encoded[0] |= marker
    return bytes(encoded)


@pytest.mark.parametrize("size", [2, 4, 8])
def test_c7_non_minimal_length_prefixes_accepted(size: int) -> None:
    def reframe(prefix: bytes, chunks: list[bytes]) -> bytes:
        out = prefix
        for chunk in chunks[:-1]:
            out += _non_minimal(chunk[0], size) + chunk[1:]
        return out + _non_minimal(0, size) + chunks[-1][1:]

    assert _decode_request(reframe(REQUEST_PREFIX, REQUEST_CHUNKS)) == [REQUEST[:12], REQUEST[12:]]
    assert _decode_response(reframe(NONCE, RESPONSE_CHUNKS)) == [RESPONSE[:1], RESPONSE[1:]]
    decoder = ChunkedRequestDecoder(RING)
    assert _feed_all(decoder, _bytewise(reframe(REQUEST_PREFIX, REQUEST_CHUNKS))) == [
        REQUEST[:12],
        REQUEST[12:],
    ]


def test_c8_media_types() -> None:
    # The gateway answers message/ohttp-chunked-req with message/ohttp-chunked-res (§3).
    assert CHUNKED_REQUEST_MEDIA_TYPE == "message/ohttp-chunked-req"
    assert CHUNKED_RESPONSE_MEDIA_TYPE == "message/ohttp-chunked-res"


# --- chunked and non-chunked labels never cross (checklist A9.64) ----------------------------


def _sender_context(label: bytes) -> tuple[bytes, _hpke.Context]:
    sender = KEY.config.hpke_public_key.sender(SUITE, request_info(label, HEADER))
    return sender.setup(EPHEMERAL)


def test_request_with_non_chunked_label_fails_chunked_decoder() -> None:
    enc, context = _sender_context(REQUEST_LABEL)
    sealed = context.seal(REQUEST)
    stream = HEADER + enc + encode_varint(len(sealed)) + sealed
    stream += b"\x00" + context.seal(b"", b"final")
    with pytest.raises(DecryptionError):
        _decode_request(stream)


def test_request_with_chunked_label_fails_non_chunked_decapsulation() -> None:
    enc, context = _sender_context(CHUNKED_REQUEST_LABEL)
    with pytest.raises(DecryptionError):
        decapsulate_request(RING, HEADER + enc + context.seal(REQUEST))


def test_non_chunked_request_fails_chunked_decoder() -> None:
    encapsulated, _ = encapsulate_request(KEY.config, REQUEST, ephemeral_private_key=EPHEMERAL)
    with pytest.raises(OHTTPError):
        _decode_request(encapsulated)


def _gateway_context() -> _hpke.Context:
    info = request_info(CHUNKED_REQUEST_LABEL, HEADER)
    return KEY.hpke_private_key.receiver(SUITE, info).setup(ENC)


def test_response_with_non_chunked_label_fails_chunked_decoder() -> None:
    aead = _hpke.derive_response_aead(_gateway_context(), SUITE, RESPONSE_LABEL, ENC, NONCE)
    stream = NONCE + _raw_chunks(aead, [(RESPONSE, b"", False), (b"", b"final", True)])
    with pytest.raises(DecryptionError):
        _decode_response(stream)


def test_chunked_response_fails_non_chunked_opener() -> None:
    enc, context = _sender_context(REQUEST_LABEL)
    _, opener = encapsulate_request(KEY.config, REQUEST, ephemeral_private_key=EPHEMERAL)
    aead = _hpke.derive_response_aead(context, SUITE, CHUNKED_RESPONSE_LABEL, enc, NONCE)
    with pytest.raises(DecryptionError):
        opener.open(NONCE + aead.seal(0, RESPONSE))


# --- key lookup before cryptography (RFC 9458 §4.3 step 1) -----------------------------------


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (request_header(2, 0x20, 1, 1), UnknownKeyError),
        (request_header(1, 0x10, 1, 1), UnknownKeyError),
        (request_header(1, 0x20, 1, 2), UnsupportedSuiteError),
        (request_header(1, 0x20, 3, 1), UnsupportedSuiteError),
    ],
)
def test_header_checked_with_seven_bytes(header: bytes, error: type[OHTTPError]) -> None:
    decoder = ChunkedRequestDecoder(RING)
    assert decoder.feed(header[:6]) == []
    with pytest.raises(error, match=f"^{OPAQUE}$"):
        decoder.feed(header[6:])
    with pytest.raises(error):
        decoder.close()


def test_expired_key_is_unknown() -> None:
    ring = KeyRing([GatewayKey(KEY.config, KEY.private_key, not_after=1000)])
    with pytest.raises(UnknownKeyError):
        ChunkedRequestDecoder(ring, now=1000).feed(ENC_REQUEST)
    assert _feed_all(ChunkedRequestDecoder(ring, now=999), [ENC_REQUEST]) == [
        REQUEST[:12],
        REQUEST[12:],
    ]


def test_small_order_enc_is_a_decryption_error() -> None:
    with pytest.raises(DecryptionError, match=f"^{OPAQUE}$"):
        ChunkedRequestDecoder(RING).feed(HEADER + bytes(32))


# --- encoders ----------------------------------------------------------------------------------


def test_concatenated_outputs_are_the_message_without_header_call() -> None:
    encoder = _example_encoder()
    stream = encoder.chunk(REQUEST[:12]) + encoder.chunk(REQUEST[12:]) + encoder.final()
    assert stream == ENC_REQUEST


def test_large_plaintexts_are_split_at_the_limit() -> None:
    encoder = ChunkedRequestEncoder(KEY.config)
    body = bytes(range(256)) * 200  # 51200 bytes: 3 full chunks and a rest
    decoder = ChunkedRequestDecoder(RING)
    pieces = decoder.feed(encoder.chunk(body))
    assert [len(piece) for piece in pieces] == [DEFAULT_MAX_CHUNK] * 3 + [51200 - 3 * 16384]
    assert b"".join(pieces) == body
    pieces = decoder.feed(encoder.final(body))  # all but the last 2^14 bytes go non-final
    assert b"".join(pieces + decoder.close()) == body
    response = decoder.response_encoder()
    client = encoder.response_decoder()
    pieces = client.feed(response.chunk(body) + response.final(body))
    assert b"".join(pieces) == body + body[:-16384]
    assert client.close() == [body[-16384:]]


def test_empty_non_final_chunk_refused_by_encoders() -> None:
    encoder = _example_encoder()
    with pytest.raises(ValueError):
        encoder.chunk(b"")
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(ENC_REQUEST)
    with pytest.raises(ValueError):
        decoder.response_encoder().chunk(b"")


def test_response_nonce_random_and_checked() -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(ENC_REQUEST)
    with pytest.raises(ValueError):
        decoder.response_encoder(response_nonce=NONCE[:-1])
    first = decoder.response_encoder().header()  # the failed call did not use it up
    other = ChunkedRequestDecoder(RING)
    other.feed(ENC_REQUEST)
    second = other.response_encoder().header()
    assert len(first) == len(second) == 16
    assert first != second


def test_suite_must_be_offered() -> None:
    with pytest.raises(ValueError):
        ChunkedRequestEncoder(KEY.config, suite=SymmetricSuite(KDF.HKDF_SHA512, AEAD.AES_128_GCM))
    encoder = ChunkedRequestEncoder(KEY.config, suite=SUITES[1])
    assert encoder.header()[:7] == request_header(1, 0x20, 1, 3)


# --- single use --------------------------------------------------------------------------------


def test_request_encoder_single_use() -> None:
    encoder = _example_encoder()
    encoder.header()
    with pytest.raises(ContextUsedError):
        encoder.header()
    encoder.final()
    with pytest.raises(ContextUsedError):
        encoder.chunk(b"x")
    with pytest.raises(ContextUsedError):
        encoder.final()
    encoder.response_decoder()
    with pytest.raises(ContextUsedError):
        encoder.response_decoder()


def test_header_after_first_chunk_is_refused() -> None:
    encoder = _example_encoder()
    encoder.chunk(b"x")
    with pytest.raises(ContextUsedError):
        encoder.header()


def test_response_encoder_single_use_and_bound_to_a_request() -> None:
    decoder = ChunkedRequestDecoder(RING)
    with pytest.raises(ContextUsedError):
        decoder.response_encoder()  # no request header yet
    decoder.feed(ENC_REQUEST)
    encoder = decoder.response_encoder()
    with pytest.raises(ContextUsedError):
        decoder.response_encoder()
    encoder.final()
    with pytest.raises(ContextUsedError):
        encoder.final()
    with pytest.raises(TypeError):
        ChunkedResponseEncoder(
            object(), 1, _gateway_context(), SUITE, ENC, response_nonce=None, limits=ChunkLimits()
        )
    with pytest.raises(TypeError):
        ChunkedResponseDecoder(object(), _gateway_context(), SUITE, ENC, ChunkLimits())


def test_decoders_refuse_use_after_close() -> None:
    decoder = ChunkedRequestDecoder(RING)
    _feed_all(decoder, [ENC_REQUEST])
    with pytest.raises(ContextUsedError):
        decoder.feed(b"")
    with pytest.raises(ContextUsedError):
        decoder.close()
    assert decoder.complete


def test_errors_are_terminal() -> None:
    decoder = ChunkedRequestDecoder(RING)
    with pytest.raises(DecryptionError):
        decoder.feed(REQUEST_PREFIX + b"\x01")
    with pytest.raises(DecryptionError):
        decoder.feed(REQUEST_CHUNKS[0])
    with pytest.raises(DecryptionError):
        decoder.close()
    assert not decoder.complete


# --- 256^Nn chunks never reached (§6.2) ------------------------------------------------------

LIMIT = (1 << 96) - 1


def test_request_encoder_stops_before_the_sequence_limit() -> None:
    encoder = _example_encoder()
    encoder._context._seq = LIMIT - 1  # type: ignore[attr-defined]  # white box: 2^96 seals
    encoder.chunk(b"last one")
    with pytest.raises(ChunkedError, match=r"^too many chunks$"):
        encoder.chunk(b"x")
    with pytest.raises(ChunkedError):
        encoder.final()


def test_response_counter_never_reaches_the_limit() -> None:
    decoder = ChunkedRequestDecoder(RING)
    decoder.feed(ENC_REQUEST)
    encoder = decoder.response_encoder(response_nonce=NONCE)
    encoder._counter = LIMIT - 1  # white box: the counter is never exposed
    chunk = encoder.chunk(b"x")
    with pytest.raises(ChunkedError, match=r"^too many chunks$"):
        encoder.final()
    client = _example_encoder().response_decoder()
    client._counter = LIMIT - 1
    assert client.feed(chunk) == [b"x"]  # the first chunk carries the nonce
    with pytest.raises(ChunkedError, match=r"^too many chunks$"):
        client.feed(chunk[len(NONCE) :])


# --- truncation and bit flips: only ohttp.errors, never complete ------------------------------


def _assert_fails(decoder: ChunkedRequestDecoder | ChunkedResponseDecoder, data: bytes) -> None:
    with pytest.raises(OHTTPError):
        decoder.feed(data)
        decoder.close()
    assert not decoder.complete


def test_cut_at_every_byte() -> None:
    for cut in range(len(ENC_REQUEST)):
        _assert_fails(ChunkedRequestDecoder(RING), ENC_REQUEST[:cut])
    for cut in range(len(ENC_RESPONSE)):
        _assert_fails(_example_encoder().response_decoder(), ENC_RESPONSE[:cut])


def _flips(data: bytes) -> Iterable[bytes]:
    for index in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[index] ^= 1 << bit
            yield bytes(flipped)


def test_every_bit_flip_fails() -> None:
    for flipped in _flips(ENC_REQUEST):
        _assert_fails(ChunkedRequestDecoder(RING), flipped)
    for flipped in _flips(ENC_RESPONSE):
        _assert_fails(_example_encoder().response_decoder(), flipped)


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.binary(max_size=200),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    prefix=st.sampled_from([b"", REQUEST_PREFIX, HEADER]),
)
def test_random_bytes_raise_only_ohttp_errors(
    garbage: bytes, cuts: list[int], prefix: bytes
) -> None:
    data = prefix + garbage
    for decoder in (ChunkedRequestDecoder(RING), _example_encoder().response_decoder()):
        try:
            _feed_all(decoder, _splits(data, cuts))
        except OHTTPError as error:
            assert not decoder.complete
            assert str(error) in FIXED_MESSAGES
        else:
            raise AssertionError("random bytes decoded as a complete message")


# --- round trips on every suite with random chunkings -----------------------------------------

ALL_SUITES = [(kem, SymmetricSuite(kdf, aead)) for kem in KEM for kdf in KDF for aead in AEAD]
_KEYS: dict[KEM, GatewayKey] = {}


def _key_for(kem: KEM) -> GatewayKey:
    if kem not in _KEYS:
        suites = tuple(SymmetricSuite(kdf, aead) for kdf in KDF for aead in AEAD)
        _KEYS[kem] = GatewayKey.generate(7, kem, suites)
    return _KEYS[kem]


_PIECES = st.lists(st.binary(min_size=1, max_size=300), max_size=5)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.sampled_from(ALL_SUITES),
    request=_PIECES,
    request_final=st.binary(max_size=100),
    response=_PIECES,
    response_final=st.binary(max_size=100),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
)
def test_round_trip_every_suite(
    choice: tuple[KEM, SymmetricSuite],
    request: list[bytes],
    request_final: bytes,
    response: list[bytes],
    response_final: bytes,
    cuts: list[int],
) -> None:
    kem, suite = choice
    key = _key_for(kem)
    encoder = ChunkedRequestEncoder(key.config, suite=suite)
    wire = encoder.header() + b"".join(encoder.chunk(p) for p in request)
    wire += encoder.final(request_final)
    gateway = ChunkedRequestDecoder(KeyRing([key]))
    received = _feed_all(gateway, _splits(wire, cuts))
    assert received == request + ([request_final] if request_final else [])
    assert gateway.complete

    sender = gateway.response_encoder()
    wire = sender.header() + b"".join(sender.chunk(p) for p in response)
    wire += sender.final(response_final)
    client = encoder.response_decoder()
    received = _feed_all(client, _splits(wire, cuts))
    assert received == response + ([response_final] if response_final else [])
    assert client.complete


@pytest.mark.parametrize(
    ("kem", "suite"),
    ALL_SUITES,
    ids=[f"{k.name}-{s.kdf.name}-{s.aead.name}" for k, s in ALL_SUITES],
)
def test_each_suite_round_trips_bytewise(kem: KEM, suite: SymmetricSuite) -> None:
    key = _key_for(kem)
    encoder = ChunkedRequestEncoder(key.config, suite=suite)
    wire = encoder.chunk(b"first") + encoder.chunk(b"second") + encoder.final(b"last")
    gateway = ChunkedRequestDecoder(KeyRing([key]))
    received = [piece for byte in _bytewise(wire) for piece in gateway.feed(memoryview(byte))]
    assert received + gateway.close() == [b"first", b"second", b"last"]
    sender = gateway.response_encoder()
    wire = sender.chunk(b"one") + sender.chunk(b"two") + sender.final()
    client = encoder.response_decoder()
    assert client.feed(bytearray(wire)) == [b"one", b"two"]
    assert client.close() == []
    assert client.complete
