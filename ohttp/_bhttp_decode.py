"""The Binary HTTP (RFC 9292) decoder: one incremental state machine for both framings.

The machine decodes one unit (framing indicator, control data or status, a field section or
field line, a content length, content bytes, padding) per step and emits stream events. The
streaming decoders feed it pieces of any size; ``decode_request`` / ``decode_response`` run it
once over the whole message and assemble the message from its events, so every check and
``Limits`` bound is the same code for both.

Limits are checked before waiting for, or slicing, the bytes a length prefix announces. A
unit that needs bytes not yet present raises ``_Truncated`` before changing any state, so the
machine can stop there and resume on the next ``feed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from ohttp import _bhttp_messages as msg
from ohttp._bhttp_messages import (
    INDETERMINATE_REQUEST,
    INDETERMINATE_RESPONSE,
    KNOWN_REQUEST,
    KNOWN_RESPONSE,
    Fields,
    Limits,
    StreamEvent,
    control_error,
    section_error,
)
from ohttp.errors import BinaryHTTPError, MalformedError, MessageTooLargeError
from ohttp.varint import decode_varint

__all__ = [
    "StreamingRequestDecoder",
    "StreamingResponseDecoder",
    "decode_request",
    "decode_response",
]

_TRUNCATED = "truncated binary HTTP message"
_SECTIONS_TOO_LARGE = "field sections exceed the limit"
_DEFAULT_LIMITS = Limits()


class _Truncated(BinaryHTTPError):
    """The data ends inside a unit: the machine stops and waits for more."""

    def __init__(self) -> None:
        super().__init__(_TRUNCATED)


# ---------------------------------------------------------------------------- units


class _Budget:
    """What a message may still use under its Limits. Units check first and spend last."""

    __slots__ = ("chunks", "content_bytes", "fields", "informational", "section_bytes")

    def __init__(self, limits: Limits) -> None:
        self.chunks = limits.max_content_chunks
        self.fields = limits.max_fields
        self.section_bytes = limits.max_field_section_bytes
        self.content_bytes = limits.max_content_bytes
        self.informational = limits.max_informational

    def check_section(self, length: int) -> None:
        if length > self.section_bytes:
            raise MessageTooLargeError(_SECTIONS_TOO_LARGE)

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
    indeterminate-length terminator (RFC 9292 §3.2)."""
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


def _checked(fields: list[tuple[bytes, bytes]], *, trailers: bool) -> Fields:
    error = section_error(fields, trailers=trailers)
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
    length = data[pos] if pos < end else 0x40  # _varint's one-byte case, without the call
    if length < 0x40:
        pos += 1
    else:
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


def _read_request_control(
    data: bytes, pos: int, end: int, budget: _Budget
) -> tuple[tuple[bytes, bytes, bytes, bytes], int]:
    """Method, scheme, authority, path, each length-prefixed (RFC 9292 §3.4)."""
    start = pos
    allowed = budget.section_bytes
    parts: list[bytes] = []
    for _ in range(4):  # the unit readers inlined: this runs for every request
        length = data[pos] if pos < end else 0x40  # 0x40: not a one-byte varint, or missing
        if length < 0x40:
            pos += 1
        else:
            length, pos = _varint(data, pos, end)
        part_end = pos + length
        if part_end - start > allowed:  # budget.check_section
            raise MessageTooLargeError(_SECTIONS_TOO_LARGE)
        if part_end > end:  # _take
            raise _Truncated
        parts.append(data[pos:part_end])
        pos = part_end
    method, scheme, authority, path = parts
    error = control_error(method, scheme, authority, path)
    if error is not None:
        raise BinaryHTTPError(error)
    budget.section_bytes -= pos - start
    return (method, scheme, authority, path), pos


def _read_status(data: bytes, pos: int, end: int) -> tuple[int, int]:
    status, pos = _varint(data, pos, end)
    if not 100 <= status <= 599:  # RFC 9292 §3.5
        raise BinaryHTTPError("invalid status code")
    return status, pos


# ---------------------------------------------------------------------------- the machine

# States. HEADERS, CONTENT and TRAILERS are the §3.8 places where a message may end.
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

_Step = Callable[["_StreamingDecoder", bytes, int, int, list[StreamEvent]], int]


class _StreamingDecoder:
    """Incremental RFC 9292 decoder for both framings, fed in pieces or the whole message."""

    _known_framing: ClassVar[int]
    _indeterminate_framing: ClassVar[int]
    _steps: ClassVar[tuple[_Step, ...]]  # indexed by state

    def __init__(self, limits: Limits = _DEFAULT_LIMITS) -> None:
        self._budget = _Budget(limits)
        self._buffer = bytearray()
        self._state = _FRAMING
        self._known = False
        self._section: list[tuple[bytes, bytes]] | None = None  # indeterminate, in progress
        self._remaining = 0  # content bytes still to come in the current chunk or content
        self._failed = False

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        section, length = cls._section_step, cls._content_length
        cls._steps = (
            cls._framing,  # _FRAMING
            cls._control,  # _CONTROL
            section,  # _INFORMATIONAL
            section,  # _HEADERS
            length,  # _CONTENT
            length,  # _CHUNK
            cls._content_bytes,  # _CONTENT_BYTES
            section,  # _TRAILERS
            cls._padding,  # _PADDING
        )

    def feed(self, data: bytes | bytearray | memoryview) -> list[StreamEvent]:
        """Consume ``data``; return the events it completes. Raises BinaryHTTPError."""
        if self._state == _CLOSED:
            raise RuntimeError("decoder already closed")
        if self._failed:
            raise BinaryHTTPError("invalid binary HTTP message")
        self._buffer += data
        events: list[StreamEvent] = []
        try:
            consumed = self._run(bytes(self._buffer), events)
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
            raise BinaryHTTPError(_TRUNCATED)
        events: list[StreamEvent] = []
        if self._state == _HEADERS:
            self._emit_head((), events)
        if self._state != _PADDING:
            self._emit_end((), events)
        self._state = _CLOSED
        return events

    def _run(self, buf: bytes, events: list[StreamEvent]) -> int:
        """Decode units from ``buf`` until one is incomplete; return the bytes consumed.

        Every unit needs at least one byte, so the end of the data stops the machine without
        a step (or an exception) to find that out."""
        end = len(buf)
        pos = 0
        steps = self._steps
        try:
            while pos < end:
                pos = steps[self._state](self, buf, pos, end, events)
        except _Truncated:
            pass  # pos is where the incomplete unit starts
        return pos

    def _framing(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        framing, pos = _varint(buf, pos, end)
        if framing not in (self._known_framing, self._indeterminate_framing):
            raise BinaryHTTPError("invalid framing indicator")  # RFC 9292 §3.3
        self._known = framing == self._known_framing
        self._state = _CONTROL
        return pos

    def _content_length(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        length, pos = _varint(buf, pos, end)
        budget = self._budget
        budget.check_content(length)
        if length and not self._known:
            if budget.chunks <= 0:
                raise MessageTooLargeError("too many content chunks")
            budget.chunks -= 1
        budget.content_bytes -= length
        self._remaining = length
        if length:
            self._state = _CONTENT_BYTES
            # Present content goes out in this step: one dispatch fewer on the common path.
            return self._content_bytes(buf, pos, end, events) if pos < end else pos
        # Empty known-length content, or the indeterminate content terminator.
        self._state = _TRAILERS
        return pos

    def _content_bytes(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        size = min(end - pos, self._remaining)  # > 0: called with data, some content due
        self._emit_content(buf[pos : pos + size], events)
        self._remaining -= size
        if self._remaining == 0:
            self._state = _TRAILERS if self._known else _CHUNK
        return pos + size

    def _padding(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        # RFC 9292 §3.8: padding is zero bytes; a non-zero one makes the message invalid.
        if buf.count(0, pos, end) != end - pos:
            raise BinaryHTTPError("non-zero padding")
        return end

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
            self._emit_end(fields, events)
            self._state = _PADDING
        elif self._state == _HEADERS:
            self._emit_head(fields, events)
            self._state = _CONTENT
        else:
            self._informational_done(fields)
            self._state = _CONTROL
        return pos

    # The machine's output. Streaming: stream events; _WholeMessage keeps the parts instead.
    def _emit_head(self, headers: Fields, events: list[StreamEvent]) -> None:
        events.append(self._head_event(headers))

    def _emit_content(self, chunk: bytes, events: list[StreamEvent]) -> None:
        events.append(msg.ContentChunk(chunk))

    def _emit_end(self, trailers: Fields, events: list[StreamEvent]) -> None:
        events.append(msg.MessageEnd(trailers))

    def _control(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        raise NotImplementedError

    def _head_event(self, headers: Fields) -> StreamEvent:
        raise NotImplementedError

    def _informational_done(self, headers: Fields) -> None:
        raise NotImplementedError


class StreamingRequestDecoder(_StreamingDecoder):
    """Decodes a request (either framing) incrementally: RequestHead, ContentChunk...,
    MessageEnd."""

    _known_framing = KNOWN_REQUEST
    _indeterminate_framing = INDETERMINATE_REQUEST
    _control_data = (b"", b"", b"", b"")

    def _control(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
        self._control_data, pos = _read_request_control(buf, pos, end, self._budget)
        self._state = _HEADERS
        return pos

    def _head_event(self, headers: Fields) -> StreamEvent:
        return msg.RequestHead(msg.Request(*self._control_data, headers=headers))

    def _informational_done(self, headers: Fields) -> None:
        raise AssertionError("requests have no informational responses")


class StreamingResponseDecoder(_StreamingDecoder):
    """Decodes a response (either framing) incrementally: ResponseHead, ContentChunk...,
    MessageEnd. Informational responses arrive inside the ResponseHead."""

    _known_framing = KNOWN_RESPONSE
    _indeterminate_framing = INDETERMINATE_RESPONSE

    def __init__(self, limits: Limits = _DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._status = 0
        self._informational: list[msg.InformationalResponse] = []

    def _control(self, buf: bytes, pos: int, end: int, events: list[StreamEvent]) -> int:
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
        return msg.ResponseHead(
            msg.Response(self._status, headers, informational=tuple(self._informational))
        )

    def _informational_done(self, headers: Fields) -> None:
        self._informational.append(msg.InformationalResponse(self._status, headers))


# ---------------------------------------------------------------------------- one-shot


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


class _WholeMessage(_StreamingDecoder):
    """The machine run once over a complete message, keeping its parts instead of emitting
    events (stream events are frozen dataclasses, too slow to build and then take apart)."""

    _headers: Fields = ()
    _trailers: Fields = ()

    def decode(self, data: bytes) -> None:
        self._chunks: list[bytes] = []
        if self._run(data, []) != len(data):  # the whole message is here: a cut is final
            raise BinaryHTTPError(_TRUNCATED)
        self.close()

    def content(self) -> bytes:
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _emit_head(self, headers: Fields, events: list[StreamEvent]) -> None:
        self._headers = headers

    def _emit_content(self, chunk: bytes, events: list[StreamEvent]) -> None:
        self._chunks.append(chunk)

    def _emit_end(self, trailers: Fields, events: list[StreamEvent]) -> None:
        self._trailers = trailers


class _WholeRequest(_WholeMessage, StreamingRequestDecoder):
    pass


class _WholeResponse(_WholeMessage, StreamingResponseDecoder):
    pass


def decode_request(
    data: bytes | bytearray | memoryview, limits: Limits = _DEFAULT_LIMITS
) -> msg.Request:
    """Decode a request in either framing; raise BinaryHTTPError if it is invalid."""
    data = _as_bytes(data)
    if data[:1] == b"\x00":  # the known-length framing (RFC 9292 §3.3) of every OHTTP client
        return _decode_known_request(data, limits)
    decoder = _WholeRequest(limits)
    decoder.decode(data)
    method, scheme, authority, path = decoder._control_data
    return msg.Request(
        method, scheme, authority, path, decoder._headers, decoder.content(), decoder._trailers
    )


def _decode_known_request(data: bytes, limits: Limits) -> msg.Request:
    """The machine's steps for a whole known-length request (RFC 9292 §3.1), in order and
    without its dispatch: the same unit readers, checks and limits, about half the CPU.

    §3.8: the message may end after its control data, its header section or its content.
    """
    budget = _Budget(limits)
    end = len(data)
    headers: Fields = ()
    content = b""
    trailers: Fields = ()
    try:
        control, pos = _read_request_control(data, 1, end, budget)
        if pos < end:
            headers, pos = _read_known_section(data, pos, end, budget, False)
        if pos < end:
            length, pos = _varint(data, pos, end)
            budget.check_content(length)
            content_end = pos + length
            if content_end > end:  # _take, inlined
                raise _Truncated
            content, pos = data[pos:content_end], content_end
        if pos < end:
            trailers, pos = _read_known_section(data, pos, end, budget, True)
    except _Truncated:
        raise BinaryHTTPError(_TRUNCATED) from None
    if data.count(0, pos, end) != end - pos:  # RFC 9292 §3.8: padding is zero bytes
        raise BinaryHTTPError("non-zero padding")
    return msg.Request(*control, headers, content, trailers)


def decode_response(
    data: bytes | bytearray | memoryview, limits: Limits = _DEFAULT_LIMITS
) -> msg.Response:
    """Decode a response in either framing; raise BinaryHTTPError if it is invalid."""
    decoder = _WholeResponse(limits)
    decoder.decode(_as_bytes(data))
    informational = tuple(decoder._informational)
    content = decoder.content()
    headers, trailers = decoder._headers, decoder._trailers
    return msg.Response(decoder._status, headers, content, trailers, informational)
