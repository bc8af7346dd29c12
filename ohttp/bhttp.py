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

Layout: this module encodes; ``ohttp._bhttp_decode`` holds the one decoder (an incremental
state machine that ``decode_request`` / ``decode_response`` run over the whole message) and
``ohttp._bhttp_messages`` the message types and the validation both directions share.
"""

from __future__ import annotations

from ohttp._bhttp_decode import (
    StreamingRequestDecoder,
    StreamingResponseDecoder,
    decode_request,
    decode_response,
)
from ohttp._bhttp_messages import (
    INDETERMINATE_REQUEST,
    INDETERMINATE_RESPONSE,
    KNOWN_REQUEST,
    KNOWN_RESPONSE,
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
    control_error,
    section_error,
)
from ohttp.varint import encode_varint

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

_SMALL_VARINTS = [bytes((size,)) for size in range(0x40)]  # also the framing indicators
_STATUS_VARINTS = {status: encode_varint(status) for status in range(100, 600)}


# ---------------------------------------------------------------------------- encoding


def _length(value: bytes) -> bytes:
    size = len(value)
    return _SMALL_VARINTS[size] if size < 0x40 else encode_varint(size)


def _status(status: int) -> bytes:
    return _STATUS_VARINTS.get(status) or encode_varint(status)


def _encode_section(fields: Fields, known: bool, trailers: bool) -> bytes:
    if not fields:  # a zero length (§3.1) or the terminator alone (§3.2): the same byte
        return b"\x00"
    # RFC 9113 §8.2.1: names are sent in lower case.
    lowered = [(name.lower(), value) for name, value in fields]
    error = section_error(lowered, trailers=trailers)
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
    error = control_error(request.method, request.scheme, request.authority, request.path)
    if error is not None:
        raise ValueError(error)
    parts = [_SMALL_VARINTS[framing]]
    for part in (request.method, request.scheme, request.authority, request.path):
        parts += (_length(part), part)
    return parts


def _encode_response_head(response: Response, framing: int, known: bool) -> list[bytes]:
    parts = [_SMALL_VARINTS[framing]]
    for interim in response.informational:
        if not 100 <= interim.status <= 199:
            raise ValueError("informational status outside 100..199")
        parts += (_status(interim.status), _encode_section(interim.headers, known, False))
    if not 200 <= response.status <= 599:
        raise ValueError("final status outside 200..599")
    parts.append(_status(response.status))
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
    framing = INDETERMINATE_REQUEST if indeterminate else KNOWN_REQUEST
    head = _encode_request_head(request, framing)
    return _encode_tail(head, request, not indeterminate, padding, truncate)


def encode_response(
    response: Response, *, indeterminate: bool = False, padding: int = 0, truncate: bool = False
) -> bytes:
    """Encode ``response`` like ``encode_request``. Raises ValueError if it is not valid."""
    framing = INDETERMINATE_RESPONSE if indeterminate else KNOWN_RESPONSE
    head = _encode_response_head(response, framing, not indeterminate)
    return _encode_tail(head, response, not indeterminate, padding, truncate)


# ---------------------------------------------------------------------------- streaming


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
        head = _encode_request_head(request, INDETERMINATE_REQUEST)
        head.append(_encode_section(request.headers, False, False))
        return self._started(head)


class StreamingResponseEncoder(_StreamingEncoder):
    """Encodes an indeterminate-length response piece by piece: head, content..., end."""

    __slots__ = ()

    def head(self, response: Response) -> bytes:
        """Framing, informational responses, final status and header section."""
        _check_head_only(response)
        head = _encode_response_head(response, INDETERMINATE_RESPONSE, False)
        head.append(_encode_section(response.headers, False, False))
        return self._started(head)
