"""Binary HTTP messages (RFC 9292): encoding, validating decoding, and a streaming codec.

Choices where the RFC leaves room (documented in the tests too):

* Field names: decoding rejects upper-case names (RFC 9292 §3.6 applies RFC 9113 §8.2.1,
  which makes them malformed); encoding lower-cases names before validating them, so both
  directions only ever carry lower-case names.
* Encoders refuse to build an invalid message with ``ValueError`` (a caller bug); decoders
  raise ``BinaryHTTPError`` (or ``MessageTooLargeError`` when a ``Limits`` bound is crossed).
* Limits are checked before waiting for, or slicing, the bytes a length prefix announces.
  A length above the limit is ``MessageTooLargeError``, even if the bytes are also missing.
* Request control data counts toward ``max_field_section_bytes``, which bounds the sum of all
  field sections of one message (informational, header and trailer sections).
* Padding is validated (RFC 9292 §3.8 MAY): a non-zero byte after the message is invalid.
* ``encode_*(truncate=True)`` omits trailing empty sections (RFC 9292 §3.8, as in RFC 9458
  Appendix A); the default emits every section, for peers that mishandle truncation.

Streaming: the encoders produce indeterminate-length messages piece by piece; the decoders
take either framing, fed in pieces of any size, and emit head, content and end events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ohttp.errors import BinaryHTTPError, MalformedError, MessageTooLargeError
from ohttp.varint import decode_varint, encode_varint

__all__ = [
    "ContentChunk",
    "Fields",
    "InformationalResponse",
    "Limits",
    "MessageEnd",
    "Request",
    "RequestHead",
    "Response",
    "ResponseHead",
    "StreamEvent",
    "StreamingRequestDecoder",
    "StreamingRequestEncoder",
    "StreamingResponseDecoder",
    "StreamingResponseEncoder",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]

Fields: TypeAlias = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Request:
    """A request: control data (RFC 9292 §3.4), header fields, content and trailer fields."""

    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """An interim 1xx response that precedes the final one (RFC 9292 §3.5.1)."""

    status: int
    headers: Fields = ()


@dataclass(frozen=True, slots=True)
class Response:
    """A final response (status 200..599) with the informational responses before it."""

    status: int
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()
    informational: tuple[InformationalResponse, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Decoder bounds (RFC 9292 §8 resource exhaustion); every one is checked before allocating.

    ``max_fields`` counts field lines across all sections, ``max_field_section_bytes`` the
    encoded bytes of all field sections plus request control data, ``max_content_bytes`` the
    content, ``max_informational`` the interim responses before a final one.
    """

    max_fields: int = 256
    max_field_section_bytes: int = 64 * 1024
    max_content_bytes: int = 16 * 1024 * 1024
    max_informational: int = 16


# RFC 9292 §3.3 framing indicators.
_KNOWN_REQUEST = 0
_KNOWN_RESPONSE = 1
_INDETERMINATE_REQUEST = 2
_INDETERMINATE_RESPONSE = 3

# RFC 9110 §5.6.2 tchar; field names additionally exclude upper case (RFC 9113 §8.2.1).
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOKEN_LOWER = _TOKEN.translate(None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SCHEME = _ALPHA + b"0123456789+-."
# Bytes never valid in a URI component: CTLs, space, DEL (also blocks request splitting).
_URI_FORBIDDEN = bytes(range(0x21)) + b"\x7f"
# RFC 9292 §3.8 (Section 5 "Differences"): control data must not appear as fields.
_CONTROL_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path", b":status"))
_WHITESPACE = (0x20, 0x09)
_COLON = 0x3A


_SMALL_VARINTS = [bytes((size,)) for size in range(0x40)]


class _Truncated(BinaryHTTPError):
    """The data ends inside a unit; the streaming decoder waits for more, others fail."""

    def __init__(self) -> None:
        super().__init__("truncated binary HTTP message")


# ---------------------------------------------------------------------------- validation


def _field_error(name: bytes, value: bytes, *, pseudo_allowed: bool) -> str | None:
    """Return why a field line is invalid (RFC 9292 §3.6, RFC 9113 §8.2.1), or None."""
    if not name:
        return "empty field name"
    if name[0] == _COLON:
        if not pseudo_allowed:
            return "pseudo-field after a regular field or in trailers"
        if name in _CONTROL_PSEUDO:
            return "control data sent as a pseudo-field"
        if len(name) == 1 or name[1:].translate(None, _TOKEN_LOWER):
            return "invalid field name"
    elif name.translate(None, _TOKEN_LOWER):
        return "invalid field name"
    if value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
        return "field value with leading or trailing whitespace"
    if b"\r" in value or b"\n" in value or b"\0" in value:
        return "field value with CR, LF or NUL"
    return None


def _control_error(method: bytes, scheme: bytes, authority: bytes, path: bytes) -> str | None:
    """Return why request control data is invalid (RFC 9292 §3.4, RFC 9113 §8.3.1), or None."""
    if not method or method.translate(None, _TOKEN):
        return "invalid method"
    for part in (scheme, authority, path):
        if len(part.translate(None, _URI_FORBIDDEN)) != len(part):
            return "invalid request target"
    if method == b"CONNECT" and not scheme and not path:
        return None  # RFC 9113 §8.5: CONNECT carries only an authority.
    if not scheme or scheme[0] not in _ALPHA or scheme.translate(None, _SCHEME):
        return "invalid scheme"
    if not path:
        return "empty path"
    # RFC 9113 §8.3.1: origin-form, or "*" for a server-wide OPTIONS request.
    server_wide = path == b"*" and method == b"OPTIONS"
    if scheme.lower() in (b"http", b"https") and path[0] != 0x2F and not server_wide:
        return "invalid path"
    return None


# ---------------------------------------------------------------------------- decoding units


class _Budget:
    """What a message may still use under its Limits. Units check first and spend last."""

    __slots__ = ("content_bytes", "fields", "informational", "section_bytes")

    def __init__(self, limits: Limits) -> None:
        self.fields = limits.max_fields
        self.section_bytes = limits.max_field_section_bytes
        self.content_bytes = limits.max_content_bytes
        self.informational = limits.max_informational

    def check_section(self, length: int) -> None:
        if length > self.section_bytes:
            raise MessageTooLargeError("field sections exceed the limit")

    def check_content(self, length: int) -> None:
        if length > self.content_bytes:
            raise MessageTooLargeError("content exceeds the limit")


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and data[pos] < 0x40:  # the common one-byte case, without a call
        return data[pos], pos + 1
    try:
        value, new_pos = decode_varint(data, pos)
    except MalformedError:
        raise _Truncated from None
    if new_pos > end:
        raise _Truncated
    return value, new_pos


def _take(data: bytes, pos: int, end: int, length: int) -> tuple[bytes, int]:
    new_pos = pos + length
    if new_pos > end:  # checked before slicing: Python slices never fail
        raise _Truncated
    return data[pos:new_pos], new_pos


def _read_field_line(data: bytes, pos: int, end: int, budget: _Budget) -> tuple[bytes, bytes, int]:
    """One field line (RFC 9292 §3.6). A zero name length returns an empty name: the
    indeterminate-length terminator, or an error in a known-length section."""
    start = pos
    name_length, pos = _varint(data, pos, end)
    if name_length == 0:
        return b"", b"", pos
    budget.check_section(name_length)
    name, pos = _take(data, pos, end, name_length)
    value_length, pos = _varint(data, pos, end)
    budget.check_section(pos - start + value_length)
    value, pos = _take(data, pos, end, value_length)
    if budget.fields == 0:
        raise MessageTooLargeError("too many fields")
    budget.fields -= 1
    budget.section_bytes -= pos - start
    return name, value, pos


def _section_error(fields: list[tuple[bytes, bytes]], *, trailers: bool) -> str | None:
    """Return why a field section is invalid (RFC 9292 §3.6), or None.

    Fast path: one scan over all names and one over all values proves a section of regular,
    well-formed fields valid; anything it flags is re-checked field by field in order.
    """
    if not fields:
        return None
    names = [name for name, _ in fields]
    values = b"\x01" + b"\x01".join([value for _, value in fields]) + b"\x01"
    if (
        b"" not in names
        and not b"".join(names).translate(None, _TOKEN_LOWER)
        and b"\r" not in values
        and b"\n" not in values
        and b"\0" not in values
        and b"\x01 " not in values
        and b" \x01" not in values
        and b"\x01\t" not in values
        and b"\t\x01" not in values
    ):
        return None
    pseudo_allowed = not trailers
    for name, value in fields:
        error = _field_error(name, value, pseudo_allowed=pseudo_allowed)
        if error is not None:
            return error
        if name[0] != _COLON:
            pseudo_allowed = False
    return None


def _checked(fields: list[tuple[bytes, bytes]], *, trailers: bool) -> Fields:
    error = _section_error(fields, trailers=trailers)
    if error is not None:
        raise BinaryHTTPError(error)
    return tuple(fields)


def _parse_known_lines(
    data: bytes, pos: int, end: int, budget: _Budget
) -> list[tuple[bytes, bytes]]:
    """Field lines filling data[pos:end] exactly; the hot path, so varints are inlined."""
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    fields_left = budget.fields
    while pos < end:
        length = data[pos]
        if length < 0x40:
            pos += 1
        else:
            length, pos = _varint(data, pos, end)
        if length == 0:  # Name Length (i) = 1.. in a known-length section
            raise BinaryHTTPError("empty field name")
        name_end = pos + length
        if name_end >= end:  # the value length must follow inside the section
            raise BinaryHTTPError("malformed field section")
        name = data[pos:name_end]
        length = data[name_end]
        if length < 0x40:
            pos = name_end + 1
        else:
            length, pos = _varint(data, name_end, end)
        value_end = pos + length
        if value_end > end:
            raise BinaryHTTPError("malformed field section")
        if fields_left == 0:
            raise MessageTooLargeError("too many fields")
        fields_left -= 1
        append((name, data[pos:value_end]))
        pos = value_end
    budget.fields = fields_left
    return fields


def _read_known_section(
    data: bytes, pos: int, end: int, budget: _Budget, trailers: bool
) -> tuple[Fields, int]:
    """A known-length field section (RFC 9292 §3.1), all of it present or _Truncated."""
    length, pos = _varint(data, pos, end)
    budget.check_section(length)
    section_end = pos + length
    if section_end > end:
        raise _Truncated
    try:
        fields = _parse_known_lines(data, pos, section_end, budget)
    except _Truncated:  # a varint crossing the section end is malformed, not partial
        raise BinaryHTTPError("malformed field section") from None
    budget.section_bytes -= length
    return _checked(fields, trailers=trailers), section_end


def _read_indeterminate_section(
    data: bytes, pos: int, end: int, budget: _Budget, trailers: bool
) -> tuple[Fields, int]:
    """Field lines up to the zero terminator (RFC 9292 §3.2)."""
    fields: list[tuple[bytes, bytes]] = []
    while True:
        name, value, pos = _read_field_line(data, pos, end, budget)
        if not name:
            return _checked(fields, trailers=trailers), pos
        fields.append((name, value))


def _read_section(
    data: bytes, pos: int, end: int, budget: _Budget, *, known: bool, trailers: bool
) -> tuple[Fields, int]:
    if known:
        return _read_known_section(data, pos, end, budget, trailers)
    return _read_indeterminate_section(data, pos, end, budget, trailers)


def _read_content(
    data: bytes, pos: int, end: int, budget: _Budget, known: bool
) -> tuple[bytes, int]:
    if known:
        length, pos = _varint(data, pos, end)
        budget.check_content(length)
        budget.content_bytes -= length
        return _take(data, pos, end, length)
    chunks: list[bytes] = []
    while True:
        length, pos = _varint(data, pos, end)
        if length == 0:  # RFC 9292 §3.2: the content terminator
            return b"".join(chunks), pos
        budget.check_content(length)
        budget.content_bytes -= length
        chunk, pos = _take(data, pos, end, length)
        chunks.append(chunk)


def _read_request_control(
    data: bytes, pos: int, end: int, budget: _Budget
) -> tuple[tuple[bytes, bytes, bytes, bytes], int]:
    """Method, scheme, authority, path, each length-prefixed (RFC 9292 §3.4)."""
    start = pos
    parts: list[bytes] = []
    for _ in range(4):
        length = data[pos] if pos < end else 0x40  # 0x40: not a one-byte varint, or missing
        if length < 0x40:
            pos += 1
        else:
            length, pos = _varint(data, pos, end)
        budget.check_section(pos - start + length)
        part, pos = _take(data, pos, end, length)
        parts.append(part)
    method, scheme, authority, path = parts
    error = _control_error(method, scheme, authority, path)
    if error is not None:
        raise BinaryHTTPError(error)
    budget.section_bytes -= pos - start
    return (method, scheme, authority, path), pos


def _read_status(data: bytes, pos: int, end: int) -> tuple[int, int]:
    status, pos = _varint(data, pos, end)
    if not 100 <= status <= 599:  # RFC 9292 §3.5
        raise BinaryHTTPError("invalid status code")
    return status, pos


def _read_framing(data: bytes, end: int, known: int, indeterminate: int) -> tuple[bool, int]:
    framing, pos = _varint(data, 0, end)
    if framing == known:
        return True, pos
    if framing == indeterminate:
        return False, pos
    # RFC 9292 §3.3: other values, or the other direction's values, are invalid.
    raise BinaryHTTPError("invalid framing indicator")


def _check_padding(data: bytes, pos: int, end: int) -> None:
    # RFC 9292 §3.8: padding is zero bytes; a non-zero one makes the message invalid.
    if data.count(0, pos, end) != end - pos:
        raise BinaryHTTPError("non-zero padding")


def _read_tail(
    data: bytes, pos: int, end: int, budget: _Budget, known: bool
) -> tuple[Fields, bytes, Fields]:
    """Header section, content, trailer section, padding. RFC 9292 §3.8: a message may end
    before any of the three sections, which then count as empty; any other cut is invalid."""
    if pos == end:
        return (), b"", ()
    headers, pos = _read_section(data, pos, end, budget, known=known, trailers=False)
    if pos == end:
        return headers, b"", ()
    content, pos = _read_content(data, pos, end, budget, known)
    if pos == end:
        return headers, content, ()
    trailers, pos = _read_section(data, pos, end, budget, known=known, trailers=True)
    _check_padding(data, pos, end)
    return headers, content, trailers


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


def decode_request(data: bytes | bytearray | memoryview, limits: Limits = Limits()) -> Request:
    """Decode a request in either framing; raise BinaryHTTPError if it is invalid."""
    buf = _as_bytes(data)
    end = len(buf)
    budget = _Budget(limits)
    known, pos = _read_framing(buf, end, _KNOWN_REQUEST, _INDETERMINATE_REQUEST)
    (method, scheme, authority, path), pos = _read_request_control(buf, pos, end, budget)
    headers, content, trailers = _read_tail(buf, pos, end, budget, known)
    return Request(method, scheme, authority, path, headers, content, trailers)


def _read_response_head(
    data: bytes, pos: int, end: int, budget: _Budget, known: bool
) -> tuple[int, tuple[InformationalResponse, ...], int]:
    """Informational responses (each with a required header section), then the final status."""
    informational: list[InformationalResponse] = []
    while True:
        status, pos = _read_status(data, pos, end)
        if status >= 200:
            return status, tuple(informational), pos
        if budget.informational == 0:
            raise MessageTooLargeError("too many informational responses")
        budget.informational -= 1
        headers, pos = _read_section(data, pos, end, budget, known=known, trailers=False)
        informational.append(InformationalResponse(status, headers))


def decode_response(data: bytes | bytearray | memoryview, limits: Limits = Limits()) -> Response:
    """Decode a response in either framing; raise BinaryHTTPError if it is invalid."""
    buf = _as_bytes(data)
    end = len(buf)
    budget = _Budget(limits)
    known, pos = _read_framing(buf, end, _KNOWN_RESPONSE, _INDETERMINATE_RESPONSE)
    status, informational, pos = _read_response_head(buf, pos, end, budget, known)
    headers, content, trailers = _read_tail(buf, pos, end, budget, known)
    return Response(status, headers, content, trailers, informational)


# ---------------------------------------------------------------------------- encoding


def _length(value: bytes) -> bytes:
    size = len(value)
    return _SMALL_VARINTS[size] if size < 0x40 else encode_varint(size)


def _encode_section(fields: Fields, known: bool, trailers: bool) -> bytes:
    # RFC 9113 §8.2.1: names are sent in lower case.
    lowered = [(name.lower(), value) for name, value in fields]
    error = _section_error(lowered, trailers=trailers)
    if error is not None:
        raise ValueError(error)
    parts: list[bytes] = []
    small = _SMALL_VARINTS
    for name, value in lowered:
        size = len(value)
        parts += (
            small[len(name)] if len(name) < 0x40 else encode_varint(len(name)),
            name,
            small[size] if size < 0x40 else encode_varint(size),
            value,
        )
    if known:
        body = b"".join(parts)
        return _length(body) + body
    parts.append(b"\x00")
    return b"".join(parts)


def _encode_content(content: bytes, known: bool) -> bytes:
    if known:
        return _length(content) + content
    if not content:
        return b"\x00"
    return b"".join((_length(content), content, b"\x00"))


def _encode_request_head(request: Request, framing: int) -> list[bytes]:
    error = _control_error(request.method, request.scheme, request.authority, request.path)
    if error is not None:
        raise ValueError(error)
    parts = [encode_varint(framing)]
    for part in (request.method, request.scheme, request.authority, request.path):
        parts += (_length(part), part)
    return parts


def _encode_response_head(response: Response, framing: int, known: bool) -> list[bytes]:
    parts = [encode_varint(framing)]
    for interim in response.informational:
        if not 100 <= interim.status <= 199:
            raise ValueError("informational status outside 100..199")
        parts += (encode_varint(interim.status), _encode_section(interim.headers, known, False))
    if not 200 <= response.status <= 599:
        raise ValueError("final status outside 200..599")
    parts.append(encode_varint(response.status))
    return parts


def _encode_tail(
    head: list[bytes], message: Request | Response, known: bool, padding: int, truncate: bool
) -> bytes:
    if padding < 0:
        raise ValueError("negative padding")
    sections = [
        _encode_section(message.headers, known, False),
        _encode_content(message.content, known),
        _encode_section(message.trailers, known, True),
    ]
    if truncate:  # RFC 9292 §3.8: trailing empty sections may be left out
        empty = (
            not message.trailers,
            not message.trailers and not message.content,
            not message.trailers and not message.content and not message.headers,
        )
        del sections[3 - sum(empty) :]
    head += sections
    if padding:
        head.append(bytes(padding))
    return b"".join(head)


def encode_request(
    request: Request, *, indeterminate: bool = False, padding: int = 0, truncate: bool = False
) -> bytes:
    """Encode ``request``; ``padding`` zero bytes follow it; ``truncate`` omits trailing empty
    sections (RFC 9292 §3.8). Raises ValueError if the request is not valid."""
    framing = _INDETERMINATE_REQUEST if indeterminate else _KNOWN_REQUEST
    head = _encode_request_head(request, framing)
    return _encode_tail(head, request, not indeterminate, padding, truncate)


def encode_response(
    response: Response, *, indeterminate: bool = False, padding: int = 0, truncate: bool = False
) -> bytes:
    """Encode ``response`` like ``encode_request``. Raises ValueError if it is not valid."""
    framing = _INDETERMINATE_RESPONSE if indeterminate else _KNOWN_RESPONSE
    head = _encode_response_head(response, framing, not indeterminate)
    return _encode_tail(head, response, not indeterminate, padding, truncate)


# ---------------------------------------------------------------------------- streaming


@dataclass(frozen=True, slots=True)
class RequestHead:
    """Control data and header section of a streamed request (content and trailers empty)."""

    request: Request


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Informational responses, final status and header section of a streamed response."""

    response: Response


@dataclass(frozen=True, slots=True)
class ContentChunk:
    """Content bytes as they arrive (never empty; boundaries carry no meaning)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The trailer section; the message is complete once ``close()`` returns."""

    trailers: Fields = ()


StreamEvent: TypeAlias = RequestHead | ResponseHead | ContentChunk | MessageEnd

_ENCODER_NEW, _ENCODER_BODY, _ENCODER_DONE = range(3)


def _check_head_only(message: Request | Response) -> None:
    if message.content or message.trailers:
        raise ValueError("head() takes a message without content or trailers")


class _StreamingEncoder:
    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _ENCODER_NEW

    def _started(self, head: list[bytes]) -> bytes:
        if self._state != _ENCODER_NEW:
            raise RuntimeError("head already encoded")
        self._state = _ENCODER_BODY
        return b"".join(head)

    def content(self, chunk: bytes) -> bytes:
        """One content chunk (RFC 9292 §3.2); b"" for empty input, since a zero-length chunk
        would terminate the content."""
        if self._state != _ENCODER_BODY:
            raise RuntimeError("content outside the message body")
        if not chunk:
            return b""
        return _length(chunk) + chunk

    def end(self, trailers: Fields = (), *, padding: int = 0) -> bytes:
        """The content terminator, the trailer section and ``padding`` zero bytes."""
        if self._state != _ENCODER_BODY:
            raise RuntimeError("end outside the message body")
        if padding < 0:
            raise ValueError("negative padding")
        encoded = b"\x00" + _encode_section(trailers, False, True) + bytes(padding)
        self._state = _ENCODER_DONE
        return encoded


class StreamingRequestEncoder(_StreamingEncoder):
    """Encodes an indeterminate-length request piece by piece: head, content..., end."""

    __slots__ = ()

    def head(self, request: Request) -> bytes:
        """Framing, control data and header section of ``request`` (no content or trailers)."""
        _check_head_only(request)
        head = _encode_request_head(request, _INDETERMINATE_REQUEST)
        head.append(_encode_section(request.headers, False, False))
        return self._started(head)


class StreamingResponseEncoder(_StreamingEncoder):
    """Encodes an indeterminate-length response piece by piece: head, content..., end."""

    __slots__ = ()

    def head(self, response: Response) -> bytes:
        """Framing, informational responses, final status and header section."""
        _check_head_only(response)
        head = _encode_response_head(response, _INDETERMINATE_RESPONSE, False)
        head.append(_encode_section(response.headers, False, False))
        return self._started(head)


# Decoder states. HEADERS, CONTENT and TRAILERS are the §3.8 places where a message may end.
(
    _FRAMING,
    _CONTROL,
    _INFORMATIONAL,
    _HEADERS,
    _CONTENT,
    _CHUNK,
    _CONTENT_BYTES,
    _TRAILERS,
    _PADDING,
    _CLOSED,
) = range(10)
_TRUNCATABLE = (_HEADERS, _CONTENT, _TRAILERS, _PADDING)


class _StreamingDecoder:
    """Incremental RFC 9292 decoder for both framings; same checks and Limits as decode_*."""

    _known_framing: int
    _indeterminate_framing: int

    def __init__(self, limits: Limits = Limits()) -> None:
        self._budget = _Budget(limits)
        self._buffer = bytearray()
        self._state = _FRAMING
        self._known = False
        self._section: list[tuple[bytes, bytes]] | None = None  # indeterminate, in progress
        self._remaining = 0  # content bytes still to come in the current chunk or content
        self._failed = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[StreamEvent]:
        """Consume ``data``; return the events it completes. Raises BinaryHTTPError."""
        if self._state == _CLOSED:
            raise RuntimeError("decoder already closed")
        if self._failed:
            raise BinaryHTTPError("invalid binary HTTP message")
        self._buffer += data
        buf = bytes(self._buffer)
        events: list[StreamEvent] = []
        pos: int | None = 0
        consumed = 0
        try:
            while pos is not None:
                consumed = pos
                pos = self._step(buf, pos, events)
        except BinaryHTTPError:
            self._failed = True
            raise
        del self._buffer[:consumed]
        return events

    def close(self) -> list[StreamEvent]:
        """End of input: return the events of §3.8-truncated trailing sections, or raise
        BinaryHTTPError if the message is incomplete."""
        if self._state == _CLOSED:
            return []
        if (
            self._failed
            or self._buffer
            or self._section is not None
            or self._state not in _TRUNCATABLE
        ):
            self._failed = True
            raise BinaryHTTPError("truncated binary HTTP message")
        events: list[StreamEvent] = []
        if self._state == _HEADERS:
            events.append(self._head_event(()))
        if self._state != _PADDING:
            events.append(MessageEnd())
        self._state = _CLOSED
        return events

    def _step(self, buf: bytes, pos: int, events: list[StreamEvent]) -> int | None:
        """Decode one unit at ``pos``; return the new position, or None to wait for data."""
        end = len(buf)
        state = self._state
        try:
            if state == _CONTENT_BYTES:
                return self._content_bytes(buf, pos, end, events)
            if state == _PADDING:
                if pos == end:
                    return None
                _check_padding(buf, pos, end)
                return end
            if state == _FRAMING:
                return self._framing(buf, pos, end)
            if state == _CONTROL:
                return self._control(buf, pos, end)
            if state in (_CONTENT, _CHUNK):
                return self._content_length(buf, pos, end)
            return self._section_step(buf, pos, end, events)
        except _Truncated:
            return None

    def _framing(self, buf: bytes, pos: int, end: int) -> int:
        framing, pos = _varint(buf, pos, end)
        if framing not in (self._known_framing, self._indeterminate_framing):
            raise BinaryHTTPError("invalid framing indicator")  # RFC 9292 §3.3
        self._known = framing == self._known_framing
        self._state = _CONTROL
        return pos

    def _content_length(self, buf: bytes, pos: int, end: int) -> int:
        length, pos = _varint(buf, pos, end)
        self._budget.check_content(length)
        self._budget.content_bytes -= length
        self._remaining = length
        if length:
            self._state = _CONTENT_BYTES
        else:  # empty known-length content, or the indeterminate content terminator
            self._state = _TRAILERS
        return pos

    def _content_bytes(
        self, buf: bytes, pos: int, end: int, events: list[StreamEvent]
    ) -> int | None:
        size = min(end - pos, self._remaining)
        if size == 0:
            return None
        events.append(ContentChunk(buf[pos : pos + size]))
        self._remaining -= size
        if self._remaining == 0:
            self._state = _TRAILERS if self._known else _CHUNK
        return pos + size

    def _section_step(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        trailers = self._state == _TRAILERS
        if self._known:
            fields, pos = _read_known_section(buf, pos, end, self._budget, trailers)
        else:
            name, value, pos = _read_field_line(buf, pos, end, self._budget)
            if name:
                if self._section is None:
                    self._section = []
                self._section.append((name, value))
                return pos
            fields = _checked(self._section or [], trailers=trailers)
            self._section = None
        if trailers:
            events.append(MessageEnd(fields))
            self._state = _PADDING
        elif self._state == _HEADERS:
            events.append(self._head_event(fields))
            self._state = _CONTENT
        else:
            self._informational_done(fields)
            self._state = _CONTROL
        return pos

    def _control(self, buf: bytes, pos: int, end: int) -> int:
        raise NotImplementedError

    def _head_event(self, headers: Fields) -> StreamEvent:
        raise NotImplementedError

    def _informational_done(self, headers: Fields) -> None:
        raise NotImplementedError


class StreamingRequestDecoder(_StreamingDecoder):
    """Decodes a request (either framing) incrementally: RequestHead, ContentChunk...,
    MessageEnd."""

    _known_framing = _KNOWN_REQUEST
    _indeterminate_framing = _INDETERMINATE_REQUEST
    _control_data = (b"", b"", b"", b"")

    def _control(self, buf: bytes, pos: int, end: int) -> int:
        self._control_data, pos = _read_request_control(buf, pos, end, self._budget)
        self._state = _HEADERS
        return pos

    def _head_event(self, headers: Fields) -> StreamEvent:
        return RequestHead(Request(*self._control_data, headers=headers))

    def _informational_done(self, headers: Fields) -> None:
        raise AssertionError("requests have no informational responses")


class StreamingResponseDecoder(_StreamingDecoder):
    """Decodes a response (either framing) incrementally: ResponseHead, ContentChunk...,
    MessageEnd. Informational responses arrive inside the ResponseHead."""

    _known_framing = _KNOWN_RESPONSE
    _indeterminate_framing = _INDETERMINATE_RESPONSE

    def __init__(self, limits: Limits = Limits()) -> None:
        super().__init__(limits)
        self._status = 0
        self._informational: list[InformationalResponse] = []

    def _control(self, buf: bytes, pos: int, end: int) -> int:
        self._status, pos = _read_status(buf, pos, end)
        if self._status >= 200:
            self._state = _HEADERS
            return pos
        if self._budget.informational == 0:
            raise MessageTooLargeError("too many informational responses")
        self._budget.informational -= 1
        self._state = _INFORMATIONAL
        return pos

    def _head_event(self, headers: Fields) -> StreamEvent:
        return ResponseHead(
            Response(self._status, headers, informational=tuple(self._informational))
        )

    def _informational_done(self, headers: Fields) -> None:
        self._informational.append(InformationalResponse(self._status, headers))
