"""Binary HTTP (RFC 9292): vectors, round trips, validation, truncation, limits, streaming."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohttp.bhttp import (
    ContentChunk,
    Fields,
    InformationalResponse,
    Limits,
    MessageEnd,
    Request,
    RequestHead,
    Response,
    ResponseHead,
    StreamEvent,
    StreamingRequestDecoder,
    StreamingRequestEncoder,
    StreamingResponseDecoder,
    StreamingResponseEncoder,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from ohttp.errors import BinaryHTTPError, MessageTooLargeError
from ohttp.varint import encode_varint

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "bhttp.json").read_text()
)["vectors"]
VECTOR_IDS = [v["name"] for v in VECTORS]
DEFAULT_LIMITS = Limits()
HUGE = bytes.fromhex("ffffffffffffffff")  # 2**62 - 1


def _b(text: str) -> bytes:
    return text.encode("latin-1")


def _fields(pairs: list[list[str]]) -> Fields:
    return tuple((_b(n), _b(v)) for n, v in pairs)


def _expected(vector: dict[str, Any]) -> Request | Response:
    e = vector["expected"]
    if vector["type"] == "request":
        return Request(
            _b(e["method"]),
            _b(e["scheme"]),
            _b(e["authority"]),
            _b(e["path"]),
            _fields(e["headers"]),
            _b(e["content"]),
            _fields(e["trailers"]),
        )
    informational = tuple(
        InformationalResponse(i["status"], _fields(i["headers"])) for i in e["informational"]
    )
    return Response(
        e["status"], _fields(e["headers"]), _b(e["content"]), _fields(e["trailers"]), informational
    )


def _decode(kind: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    return decode_request(data, limits) if kind == "request" else decode_response(data, limits)


def _encode(message: Request | Response, **options: Any) -> bytes:
    if isinstance(message, Request):
        return encode_request(message, **options)
    return encode_response(message, **options)


def _lp(value: bytes) -> bytes:
    return encode_varint(len(value)) + value


def _known_section(*lines: tuple[bytes, bytes]) -> bytes:
    body = b"".join(_lp(n) + _lp(v) for n, v in lines)
    return _lp(body)


GET = b"\x00" + _lp(b"GET") + _lp(b"https") + _lp(b"example.com") + _lp(b"/")


def _request(
    headers: bytes = b"\x00", content: bytes = b"\x00", trailers: bytes = b"\x00"
) -> bytes:
    return GET + headers + content + trailers


# ------------------------------------------------------------------------------------ vectors


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_decodes_to_every_expected_field(vector: dict[str, Any]) -> None:
    assert _decode(vector["type"], bytes.fromhex(vector["hex"])) == _expected(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    encoded = _encode(_expected(vector), **vector["encode"])
    assert encoded.hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
@pytest.mark.parametrize("indeterminate", [False, True])
@pytest.mark.parametrize("truncate", [False, True])
def test_vector_reencodes_in_other_framings(
    vector: dict[str, Any], indeterminate: bool, truncate: bool
) -> None:
    message = _decode(vector["type"], bytes.fromhex(vector["hex"]))
    again = _encode(message, indeterminate=indeterminate, truncate=truncate, padding=3)
    assert _decode(vector["type"], again) == message


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_cut_at_every_byte(vector: dict[str, Any]) -> None:
    """RFC 9292 §3.8: only cuts before trailing sections decode; every other cut is invalid."""
    data = bytes.fromhex(vector["hex"])
    full = _expected(vector)
    for length in range(len(data) + 1):
        prefix = data[:length]
        if length not in vector["valid_lengths"]:
            with pytest.raises(BinaryHTTPError):
                _decode(vector["type"], prefix)
            continue
        cut = _decode(vector["type"], prefix)
        # Sections after the cut read as empty; sections before it are intact.
        assert cut.headers in ((), full.headers)
        assert cut.content in (b"", full.content)
        assert cut.trailers in ((), full.trailers)
        if isinstance(cut, Request):
            assert isinstance(full, Request)
            assert cut.path == full.path
            assert cut.authority == full.authority
        else:
            assert isinstance(full, Response)
            assert (cut.status, cut.informational) == (full.status, full.informational)


def _outcome(kind: str, data: bytes) -> object:
    try:
        return _decode(kind, data)
    except BinaryHTTPError:
        return BinaryHTTPError


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_bit_flips_give_binary_http_error_or_a_valid_message(vector: dict[str, Any]) -> None:
    data = bytearray.fromhex(vector["hex"])
    kind = vector["type"]
    valid = 0
    for index in range(len(data)):
        for bit in range(8):
            data[index] ^= 1 << bit
            outcome = _outcome(kind, bytes(data))  # any other exception fails the test
            if outcome is not BinaryHTTPError:
                valid += 1
                assert _decode(kind, _encode(outcome)) == outcome  # type: ignore[arg-type]
            assert _stream_outcome(kind, bytes(data), 7) == outcome
            data[index] ^= 1 << bit
    assert valid > 0  # flips inside values keep messages valid: the loop did decode some


# ------------------------------------------------------------------------------------ round trips

_TCHAR_LOWER = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
names = st.text(_TCHAR_LOWER, min_size=1, max_size=12).map(str.encode)
values = st.binary(max_size=40).map(lambda v: v.translate(None, b"\r\n\0").strip(b" \t"))
field_lists = st.lists(st.tuples(names, values), max_size=8).map(tuple)
pseudo_fields = st.lists(
    st.tuples(st.sampled_from([b":protocol", b":x-ext"]), values), max_size=2
).map(tuple)
headers_st = st.builds(lambda p, f: p + f, pseudo_fields, field_lists)
contents = st.binary(max_size=300)
requests = st.builds(
    Request,
    method=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=8).map(str.encode),
    scheme=st.sampled_from([b"https", b"http", b"coap+tcp"]),
    authority=st.sampled_from([b"", b"example.com", b"[::1]:8443", b"a.b:1"]),
    path=st.text("abc/?=&%.-_~", max_size=20).map(lambda p: b"/" + p.encode()),
    headers=headers_st,
    content=contents,
    trailers=field_lists,
)
informational_st = st.lists(
    st.builds(InformationalResponse, st.integers(100, 199), headers_st), max_size=3
).map(tuple)
responses = st.builds(
    Response,
    status=st.integers(200, 599),
    headers=headers_st,
    content=contents,
    trailers=field_lists,
    informational=informational_st,
)
framing_options = st.fixed_dictionaries(
    {"indeterminate": st.booleans(), "padding": st.integers(0, 20), "truncate": st.booleans()}
)


@given(requests, framing_options)
@settings(deadline=None)
def test_request_round_trip(request: Request, options: dict[str, Any]) -> None:
    assert decode_request(encode_request(request, **options)) == request


@given(responses, framing_options)
@settings(deadline=None)
def test_response_round_trip(response: Response, options: dict[str, Any]) -> None:
    assert decode_response(encode_response(response, **options)) == response


@given(requests, st.integers(1, 50))
@settings(deadline=None)
def test_padding_length_is_exact(request: Request, padding: int) -> None:
    plain = encode_request(request)
    padded = encode_request(request, padding=padding)
    assert padded == plain + bytes(padding)


def test_uppercase_names_are_lowercased_on_encode() -> None:
    request = Request(b"GET", b"https", b"a", b"/", headers=((b"Content-Type", b"text/plain"),))
    decoded = decode_request(encode_request(request))
    assert decoded.headers == ((b"content-type", b"text/plain"),)


def test_indeterminate_content_is_one_chunk_and_empty_content_no_chunk() -> None:
    request = Request(b"GET", b"https", b"a", b"/", content=b"abc")
    assert encode_request(request, indeterminate=True).endswith(b"\x00\x03abc\x00\x00")
    empty = Request(b"GET", b"https", b"example.com", b"/")
    assert encode_request(empty, indeterminate=True) == GET.replace(b"\x00", b"\x02", 1) + bytes(3)


# ------------------------------------------------------------------------------------ checklist D3


@pytest.mark.parametrize("framing", ["01", "03", "04", "3f", "4040", "c000000000000004"])
def test_i1_bad_framing_indicator_in_request(framing: str) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(bytes.fromhex(framing) + GET[1:] + bytes(3))


@pytest.mark.parametrize("framing", ["00", "02", "04", "4000", "4002"])
def test_i1_bad_framing_indicator_in_response(framing: str) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_response(bytes.fromhex(framing) + bytes.fromhex("40c8000000"))


@pytest.mark.parametrize(
    "message",
    [
        b"\x00" + HUGE,  # method length
        GET + HUGE,  # header section length
        GET + _lp(_lp(b"a") + _lp(b"b"))[:0] + b"\x00" + HUGE,  # content length
        GET + b"\x00\x00" + HUGE,  # trailer section length
        b"\x02" + GET[1:] + HUGE,  # field name length (indeterminate)
        b"\x02" + GET[1:] + b"\x01a" + HUGE,  # field value length
        b"\x02" + GET[1:] + b"\x00" + HUGE,  # content chunk length
        b"\x01" + HUGE,  # status (out of range)
    ],
)
def test_i2_huge_length_prefixes_raise_without_allocating(message: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(BinaryHTTPError):
            _decode("response" if message[0] == 1 else "request", message)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize(
    "message",
    [
        GET + b"\x05\x01a\x01b",  # header section longer than the data
        GET + _known_section((b"a", b"b"))[:-1],  # value cut
        GET + b"\x00\x05abc",  # content cut
        GET + b"\x00\x00\x06\x01a\x01b",  # trailers cut
    ],
)
def test_i3_length_past_end_is_invalid(message: bytes) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(message)


def test_i4_non_minimal_varints_are_accepted() -> None:
    def wide(value: int) -> bytes:
        return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")

    message = (
        b"\x40\x00"  # framing indicator 0 as 0x4000
        + b"\x40\x03GET"
        + b"\x80\x00\x00\x05https"
        + wide(11)
        + b"example.com"
        + b"\x40\x01/"
        + b"\x40\x08\x40\x01a\x80\x00\x00\x01b"  # section with wide lengths inside
        + wide(2)
        + b"hi"
        + b"\x40\x00"
    )
    assert decode_request(message) == Request(
        b"GET", b"https", b"example.com", b"/", ((b"a", b"b"),), b"hi"
    )
    indeterminate = b"\x40\x02" + GET[1:] + b"\x40\x01a\x01b\x40\x00" + b"\x01x\x40\x00\x40\x00"
    assert decode_request(indeterminate).content == b"x"
    assert decode_response(bytes.fromhex("c000000000000001c0000000000000c8")).status == 200


def test_i5_known_length_request_ending_after_header_section() -> None:
    request = decode_request(GET + _known_section((b"accept", b"*/*")))
    assert request.headers == ((b"accept", b"*/*"),)
    assert (request.content, request.trailers) == (b"", ())


@pytest.mark.parametrize(
    "message",
    [
        GET + _known_section((b"accept", b"*/*"))[:-2],  # inside a field line
        GET + b"\x00\x03ab",  # inside content
        b"\x02" + GET[1:] + b"\x06accept\x03*/*",  # indeterminate section without terminator
        b"\x02" + GET[1:] + b"\x00\x02ab",  # indeterminate content without terminator
        b"\x02" + GET[1:] + b"\x00\x02ab\x00\x01a\x01b",  # trailers without terminator
        GET[:-1],  # inside control data
    ],
)
def test_i6_truncation_inside_a_part_is_invalid(message: bytes) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(message)


def test_i7_padding_must_be_zero() -> None:
    assert decode_request(_request() + bytes(100)).method == b"GET"
    with pytest.raises(BinaryHTTPError):
        decode_request(_request() + b"\x00\x01")
    with pytest.raises(BinaryHTTPError):
        decode_response(bytes.fromhex("0140c8000000ff"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"a b", b"v"),
        (b"a:b", b"v"),
        (b"a\x00", b"v"),
        (b"a\x01", b"v"),
        (b"a\x7f", b"v"),
        (b"a\xff", b"v"),
        (b"a(b", b"v"),
        (b"Accept", b"v"),  # upper case: rejected on decode (RFC 9113 §8.2.1)
        (b":", b"v"),
        (b"ok", b"a\rb"),
        (b"ok", b"a\nb"),
        (b"ok", b"a\x00b"),
        (b"ok", b" v"),
        (b"ok", b"v "),
        (b"ok", b"\tv"),
        (b"ok", b"v\t"),
        (b"ok", b" "),
    ],
)
def test_i8_invalid_field_names_and_values(name: bytes, value: bytes) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + _known_section((name, value)))
    with pytest.raises(BinaryHTTPError):
        decode_request(b"\x02" + GET[1:] + _lp(name) + _lp(value) + b"\x00")
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + b"\x00\x00" + _known_section((name, value)))
    if name.islower() or not name.isalpha():  # upper case is lower-cased by the encoder
        with pytest.raises(ValueError, match="field"):
            encode_request(Request(b"GET", b"https", b"a", b"/", headers=((name, value),)))


def test_i8_empty_name_in_known_length_section() -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + _lp(b"\x00\x01v"))


def test_i8_odd_but_valid_values_pass() -> None:
    request = decode_request(GET + _known_section((b"x", b""), (b"y", b"a \t b\x01\xff")))
    assert request.headers == ((b"x", b""), (b"y", b"a \t b\x01\xff"))


@pytest.mark.parametrize("name", [b":method", b":scheme", b":authority", b":path", b":status"])
def test_i9_control_data_as_field_is_invalid(name: bytes) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + _known_section((name, b"x")))
    with pytest.raises(BinaryHTTPError):
        decode_response(bytes.fromhex("0140c8") + _known_section((name, b"x")))


def test_i9_pseudo_field_placement() -> None:
    ok = decode_request(GET + _known_section((b":protocol", b"websocket"), (b"a", b"b")))
    assert ok.headers[0] == (b":protocol", b"websocket")
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + _known_section((b"a", b"b"), (b":protocol", b"websocket")))
    with pytest.raises(BinaryHTTPError):
        decode_request(GET + b"\x00\x00" + _known_section((b":protocol", b"websocket")))
    with pytest.raises(ValueError, match="pseudo"):
        encode_request(Request(b"GET", b"https", b"a", b"/", trailers=((b":x", b"y"),)))


def test_i10_many_fields_and_large_sections_are_bounded() -> None:
    cookies = b"".join(_lp(b"cookie") + _lp(b"a=b") for _ in range(1000))
    with pytest.raises(MessageTooLargeError):
        decode_request(GET + _lp(cookies))
    with pytest.raises(MessageTooLargeError):
        decode_request(b"\x02" + GET[1:] + cookies + b"\x00")
    hundred_k = b"\x01a\x00" * 100_000
    with pytest.raises(MessageTooLargeError):
        decode_request(b"\x02" + GET[1:] + hundred_k + b"\x00")
    ten_mb = _lp(b"x") + _lp(b"y" * (10 * 1024 * 1024))
    with pytest.raises(MessageTooLargeError):
        decode_request(GET + _lp(ten_mb))


# ------------------------------------------------------------------------------------ limits


def test_limits_fields_are_counted_across_sections() -> None:
    message = (
        GET + _known_section((b"a", b"1"), (b"b", b"2")) + b"\x00" + _known_section((b"c", b"3"))
    )
    assert len(decode_request(message, Limits(max_fields=3)).trailers) == 1
    with pytest.raises(MessageTooLargeError):
        decode_request(message, Limits(max_fields=2))


def test_limits_field_section_bytes() -> None:
    message = GET + _known_section((b"a", b"x" * 100))
    control = len(GET) - 1
    line = 1 + 1 + 2 + 100  # name length, name, 2-byte value length, value
    assert decode_request(message, Limits(max_field_section_bytes=control + line)).headers
    with pytest.raises(MessageTooLargeError):
        decode_request(message, Limits(max_field_section_bytes=control + line - 1))


def test_limits_content_bytes_both_framings() -> None:
    request = Request(b"PUT", b"https", b"a", b"/", content=b"z" * 1000)
    for indeterminate in (False, True):
        data = encode_request(request, indeterminate=indeterminate)
        assert decode_request(data, Limits(max_content_bytes=1000)).content == request.content
        with pytest.raises(MessageTooLargeError):
            decode_request(data, Limits(max_content_bytes=999))
    chunked = b"\x02" + GET[1:] + b"\x00" + b"\x03abc" * 5 + b"\x00\x00"
    assert decode_request(chunked).content == b"abc" * 5
    with pytest.raises(MessageTooLargeError):
        decode_request(chunked, Limits(max_content_bytes=14))


def test_limits_informational_responses() -> None:
    response = Response(200, informational=(InformationalResponse(103),) * 3)
    data = encode_response(response)
    assert decode_response(data, Limits(max_informational=3)) == response
    with pytest.raises(MessageTooLargeError):
        decode_response(data, Limits(max_informational=2))


# ------------------------------------------------------------------------------------ control data


@pytest.mark.parametrize("status", [0, 99, 600, 1000])
def test_status_out_of_range(status: int) -> None:
    with pytest.raises(BinaryHTTPError):
        decode_response(b"\x01" + encode_varint(status))
    with pytest.raises(ValueError, match="status"):
        encode_response(Response(status))


def test_informational_needs_a_final_response() -> None:
    with pytest.raises(BinaryHTTPError):
        decode_response(bytes.fromhex("014067"))  # 103 then nothing
    with pytest.raises(BinaryHTTPError):
        decode_response(bytes.fromhex("01406700"))  # 103 + empty headers, no final status
    with pytest.raises(ValueError, match="informational"):
        encode_response(Response(200, informational=(InformationalResponse(200),)))


@pytest.mark.parametrize(
    ("method", "scheme", "authority", "path"),
    [
        (b"", b"https", b"a", b"/"),
        (b"G T", b"https", b"a", b"/"),
        (b"GET", b"", b"a", b"/"),
        (b"GET", b"1ttp", b"a", b"/"),
        (b"GET", b"https", b"a b", b"/"),
        (b"GET", b"https", b"a", b""),
        (b"GET", b"https", b"a", b"x"),
        (b"GET", b"https", b"a", b"*"),
        (b"GET", b"https", b"a", b"/a\r\nb"),
        (b"GET", b"https", b"a", b"/a b"),
    ],
)
def test_invalid_control_data(method: bytes, scheme: bytes, authority: bytes, path: bytes) -> None:
    data = b"\x00" + b"".join(_lp(p) for p in (method, scheme, authority, path))
    with pytest.raises(BinaryHTTPError):
        decode_request(data)
    with pytest.raises(ValueError, match=r"method|scheme|path|target"):
        encode_request(Request(method, scheme, authority, path))


@pytest.mark.parametrize(
    ("method", "scheme", "authority", "path"),
    [
        (b"OPTIONS", b"https", b"a", b"*"),
        (b"CONNECT", b"", b"example.com:443", b""),
        (b"GET", b"https", b"", b"/"),  # empty authority, Host header instead (RFC 9292 §3.4)
        (b"GET", b"urn", b"", b"x:y"),
    ],
)
def test_valid_unusual_control_data(
    method: bytes, scheme: bytes, authority: bytes, path: bytes
) -> None:
    request = Request(method, scheme, authority, path)
    assert decode_request(encode_request(request)) == request


def test_encoder_rejects_negative_padding_and_head_with_body() -> None:
    with pytest.raises(ValueError, match="padding"):
        encode_request(Request(b"GET", b"https", b"a", b"/"), padding=-1)
    with pytest.raises(ValueError, match="content"):
        StreamingResponseEncoder().head(Response(200, content=b"x"))


def test_decoders_accept_bytearray_and_memoryview() -> None:
    data = _request()
    assert decode_request(bytearray(data)) == decode_request(memoryview(data))


# ------------------------------------------------------------------------------------ streaming


def _collect(kind: str, events: list[StreamEvent]) -> Request | Response:
    heads = [e for e in events if isinstance(e, RequestHead | ResponseHead)]
    ends = [e for e in events if isinstance(e, MessageEnd)]
    assert len(heads) == 1
    assert len(ends) == 1
    assert events[0] is heads[0]
    assert events[-1] is ends[0]
    content = b"".join(e.data for e in events if isinstance(e, ContentChunk))
    assert all(e.data for e in events if isinstance(e, ContentChunk))
    head = heads[0]
    if isinstance(head, RequestHead):
        assert kind == "request"
        r = head.request
        return Request(
            r.method, r.scheme, r.authority, r.path, r.headers, content, ends[0].trailers
        )
    s = head.response
    return Response(s.status, s.headers, content, ends[0].trailers, s.informational)


def _stream_decode(
    kind: str, data: bytes, step: int, limits: Limits = DEFAULT_LIMITS
) -> Request | Response:
    decoder = (
        StreamingRequestDecoder(limits) if kind == "request" else StreamingResponseDecoder(limits)
    )
    events: list[StreamEvent] = []
    for start in range(0, len(data), step):
        events += decoder.feed(data[start : start + step])
    events += decoder.close()
    return _collect(kind, events)


def _stream_outcome(kind: str, data: bytes, step: int) -> object:
    try:
        return _stream_decode(kind, data, step)
    except BinaryHTTPError:
        return BinaryHTTPError


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_streaming_decoder_matches_one_shot_on_vectors(vector: dict[str, Any], step: int) -> None:
    data = bytes.fromhex(vector["hex"])
    assert _stream_decode(vector["type"], data, step) == _expected(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_streaming_decoder_every_cut(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    for length in range(len(data) + 1):
        assert _stream_outcome(vector["type"], data[:length], 3) == _outcome(
            vector["type"], data[:length]
        )


def test_streaming_response_round_trip_chunk_by_chunk() -> None:
    encoder = StreamingResponseEncoder()
    decoder = StreamingResponseDecoder()
    head = Response(
        200, ((b"content-type", b"text/event-stream"),), informational=(InformationalResponse(103),)
    )
    events = decoder.feed(encoder.head(head))
    assert events == [ResponseHead(head)]
    for token in (b"Hello", b"", b", ", b"world"):
        piece = encoder.content(token)
        assert decoder.feed(piece) == ([ContentChunk(token)] if token else [])
    assert encoder.content(b"") == b""
    assert decoder.feed(encoder.end(((b"x-done", b"1"),), padding=4)) == [
        MessageEnd(((b"x-done", b"1"),))
    ]
    assert decoder.close() == []


def test_streaming_request_encoder() -> None:
    encoder = StreamingRequestEncoder()
    request = Request(b"POST", b"https", b"a", b"/", ((b"a", b"b"),))
    data = encoder.head(request) + encoder.content(b"abc") + encoder.content(b"def") + encoder.end()
    assert decode_request(data) == Request(
        b"POST", b"https", b"a", b"/", ((b"a", b"b"),), b"abcdef"
    )
    with pytest.raises(RuntimeError):
        encoder.content(b"late")
    with pytest.raises(RuntimeError):
        encoder.head(request)


def test_streaming_encoder_requires_head_first() -> None:
    with pytest.raises(RuntimeError):
        StreamingResponseEncoder().content(b"x")
    with pytest.raises(RuntimeError):
        StreamingResponseEncoder().end()


@given(responses, framing_options, st.integers(1, 64))
@settings(deadline=None, max_examples=60)
def test_streaming_decoder_matches_one_shot(
    response: Response, options: dict[str, Any], step: int
) -> None:
    data = encode_response(response, **options)
    assert _stream_decode("response", data, step) == response


@given(requests, framing_options, st.integers(1, 64))
@settings(deadline=None, max_examples=60)
def test_streaming_request_decoder_matches_one_shot(
    request: Request, options: dict[str, Any], step: int
) -> None:
    assert _stream_decode("request", encode_request(request, **options), step) == request


def test_streaming_incomplete_stream_close_raises() -> None:
    encoder = StreamingResponseEncoder()
    data = encoder.head(Response(200)) + encoder.content(b"partial")
    decoder = StreamingResponseDecoder()
    events = decoder.feed(data)
    assert events == [ResponseHead(Response(200)), ContentChunk(b"partial")]
    with pytest.raises(BinaryHTTPError):
        decoder.close()
    with pytest.raises(BinaryHTTPError):
        StreamingResponseDecoder().close()


def test_streaming_content_is_delivered_before_the_chunk_ends() -> None:
    decoder = StreamingResponseDecoder()
    decoder.feed(bytes.fromhex("0340c800") + encode_varint(1000))
    assert decoder.feed(b"x" * 10) == [ContentChunk(b"x" * 10)]


def test_streaming_limits_apply_before_the_bytes_arrive() -> None:
    decoder = StreamingResponseDecoder(Limits(max_content_bytes=100))
    with pytest.raises(MessageTooLargeError):
        decoder.feed(bytes.fromhex("0340c800") + encode_varint(101))
    with pytest.raises(BinaryHTTPError):
        decoder.feed(b"\x00")  # a failed decoder stays failed
    with pytest.raises(MessageTooLargeError):
        StreamingRequestDecoder().feed(b"\x02" + GET[1:] + HUGE)
    with pytest.raises(MessageTooLargeError):
        StreamingRequestDecoder().feed(GET + HUGE)


def test_streaming_non_zero_padding_fails() -> None:
    decoder = StreamingResponseDecoder()
    decoder.feed(bytes.fromhex("0140c8000000"))
    with pytest.raises(BinaryHTTPError):
        decoder.feed(b"\x00\x07")
