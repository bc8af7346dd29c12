"""A sans-IO HTTP/1.1 response parser for the relay's one hop to the gateway (RFC 9112).

Bytes go in with :meth:`ResponseParser.feed`, events come out: one :class:`ResponseHead`, any
number of :class:`Data`, then :data:`END_OF_MESSAGE`. The parser does no I/O and knows nothing
about sockets, timeouts or pools, so it can be tested alone and swapped later. Limits are
strict; any violation raises :class:`ProtocolError` and the parser is unusable afterwards.
"""

from __future__ import annotations

import enum
import re
from typing import ClassVar, Final

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE = 1024
MAX_TRAILER_BYTES = 16 * 1024
_CRLF = b"\r\n"


class ProtocolError(Exception):
    """The bytes are not a valid HTTP/1.1 response within the limits. Messages are fixed."""


class IncompleteResponse(ProtocolError):
    """The input ended before the response did; ``in_head`` tells whether its head was complete."""

    def __init__(self, in_head: bool) -> None:
        super().__init__("response head incomplete" if in_head else "response body incomplete")
        self.in_head = in_head


class ResponseHead:
    """Event: status line and header fields of a final (non-1xx) response, with its framing.

    Never changed after parsing: one object may stand for every head of the same bytes
    (see ``_LastHead``).
    """

    __slots__ = ("chunked", "content_length", "headers", "keep_alive", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], content_length: int | None,
                 chunked: bool, keep_alive: bool) -> None:
        self.status = status
        self.headers = headers  # (lower-case name, value) of the fields in _KEPT_FIELDS
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive

    def get(self, name: str) -> str | None:
        """The first kept field called ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def media_type(self) -> str | None:
        """Content-Type, trimmed and lower-cased (the relay compares media types exactly)."""
        value = self.get("content-type")
        return value.strip().lower() if value is not None else None


class Data:
    """Event: body bytes (never empty), transfer coding removed."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class EndOfMessage:
    """Event: the response is complete; trailer fields, if any, were checked and dropped."""

    __slots__ = ()


END_OF_MESSAGE: Final = EndOfMessage()

Event = ResponseHead | Data | EndOfMessage

# RFC 9112 §4 status line; RFC 9112 §5 field lines: a token name directly followed by ":"
# (no whitespace before the colon, no obs-fold), a value without CR, LF or NUL.
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n\0]*)?\r\n")
_FIELD_LINE = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*\r\n"
_FIELDS = re.compile(rb"(?:" + _FIELD_LINE + rb")*")
# The only response fields the relay reads; the others are checked for syntax and dropped.
_KEPT_NAMES = ("content-type", "content-length", "transfer-encoding", "connection",
               "cache-control", "retry-after", "incremental")
_KEPT_FIELDS = {name.encode(): name for name in _KEPT_NAMES}
_KEPT_FIELD = re.compile(
    rb"^(" + b"|".join(re.escape(n) for n in _KEPT_FIELDS) + rb"):([^\r]*)\r$",
    re.IGNORECASE | re.MULTILINE,
)


def parse_head(raw: bytes) -> ResponseHead:
    """Parse a response head (each line ending in CRLF, without the final empty line)."""
    status_line = _STATUS_LINE.match(raw)
    if status_line is None:
        raise ProtocolError("invalid status line")
    start = status_line.end()
    if _FIELDS.fullmatch(raw, start) is None:
        raise ProtocolError("invalid header line")
    if raw.count(b"\n", start) > MAX_HEADER_LINES:
        raise ProtocolError("too many header lines")
    headers: list[tuple[str, str]] = []
    close = status_line.group(1) != b"1"  # RFC 9112 §9.3: HTTP/1.0 is not persistent
    encodings: list[str] = []
    lengths: set[str] = set()
    for name, value in _KEPT_FIELD.findall(raw, start):
        key = _KEPT_FIELDS[name.lower()]
        text = value.strip(b" \t").decode("latin-1")
        headers.append((key, text))
        if key == "connection" and "close" in text.lower():
            close = close or "close" in (t.strip().lower() for t in text.split(","))
        elif key == "transfer-encoding":
            encodings.append(text.strip().lower())
        elif key == "content-length":
            lengths.add(text.strip())
    return _framing(int(status_line.group(2)), headers, encodings, lengths, not close)


def _framing(status: int, headers: list[tuple[str, str]], encodings: list[str],
             lengths: set[str], keep_alive: bool) -> ResponseHead:
    chunked = False
    length: int | None = None
    if encodings:
        # RFC 9112 §6.3: chunked must be the final (here: only) coding; TE wins over CL.
        if encodings != ["chunked"]:
            raise ProtocolError("unsupported transfer coding")
        chunked = True
    elif lengths:
        # RFC 9112 §6.3 rule 5: differing or invalid Content-Length values are unrecoverable.
        value = next(iter(lengths))
        if len(lengths) != 1 or not value.isdigit() or not value.isascii() or len(value) > 18:
            raise ProtocolError("invalid content-length")
        length = int(value)
    if status in (204, 304) or 100 <= status < 200:
        chunked, length = False, 0  # RFC 9112 §6.3 rule 1: these never have a body
    elif not chunked and length is None:
        keep_alive = False  # close-delimited body (RFC 9112 §6.3 rule 8)
    return ResponseHead(status, headers, length, chunked, keep_alive)


class _LastHead:
    """The last head parsed and its bytes. A gateway's heads repeat byte for byte (its Date
    field changes once a second) and :func:`parse_head` is a pure function of them, so a repeat
    costs one comparison instead of a parse; only heads that parsed are kept."""

    raw: ClassVar[bytes] = b""
    head: ClassVar[ResponseHead | None] = None

    @classmethod
    def parse(cls, raw: bytes) -> ResponseHead:
        head = cls.head
        if head is None or raw != cls.raw:
            head = parse_head(raw)
            cls.raw, cls.head = raw, head
        return head


class _State(enum.Enum):
    HEAD = enum.auto()
    LENGTH = enum.auto()
    CHUNK_SIZE = enum.auto()
    CHUNK_DATA = enum.auto()
    CHUNK_END = enum.auto()  # the CRLF after chunk data
    TRAILERS = enum.auto()
    UNTIL_CLOSE = enum.auto()
    DONE = enum.auto()


# As module names: an enum member looked up on its class costs several times a global's.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = _State


class ResponseParser:
    """Parses one response at a time; :meth:`start` readies it for the next one."""

    __slots__ = ("_buffer", "_remaining", "_state", "_trailer_bytes")

    def __init__(self) -> None:
        self._state = _HEAD
        self._buffer = b""
        self._remaining = 0  # body bytes left: Content-Length or current chunk
        self._trailer_bytes = 0

    def start(self) -> None:
        """Expect a new response (after a complete one on a reused connection)."""
        self._state = _HEAD
        self._buffer = b""
        self._trailer_bytes = 0

    @property
    def done(self) -> bool:
        """The response is complete (EndOfMessage was returned)."""
        return self._state is _DONE

    @property
    def extra(self) -> bool:
        """Bytes arrived after a complete response: the connection cannot be reused."""
        return self._state is _DONE and bool(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        """Take the next bytes; returns the events they complete (maybe none)."""
        if self._state is _HEAD and not self._buffer:
            whole = self._whole(data)
            if whole is not None:
                return whole
        self._buffer = self._buffer + data if self._buffer else data
        events: list[Event] = []
        # Each step consumes from the buffer; stop when a step needs more bytes.
        while self._buffer:
            state = self._state
            if state is _HEAD:
                if not self._parse_head(events):
                    break
            elif state is _LENGTH or state is _CHUNK_DATA:
                self._take_body(events)
            elif state is _CHUNK_SIZE:
                if not self._parse_chunk_size():
                    break
            elif state is _CHUNK_END:
                if not self._parse_chunk_end():
                    break
            elif state is _TRAILERS:
                if not self._skip_trailer_line(events):
                    break
            elif state is _UNTIL_CLOSE:
                events.append(Data(self._buffer))
                self._buffer = b""
            else:  # DONE: left over for the caller to see as ``extra``
                break
        return events

    def feed_eof(self) -> list[Event]:
        """The input ended: completes a close-delimited body, else raises IncompleteResponse."""
        if self._state is _UNTIL_CLOSE:
            # RFC 9112 §6.3 rule 8: the end of the connection ends this body.
            self._state = _DONE
            return [END_OF_MESSAGE]
        if self._state is _DONE:
            return []
        raise IncompleteResponse(self._state is _HEAD)

    def _whole(self, data: bytes) -> list[Event] | None:
        # The common answer, a final head and its whole sized body in one piece, without the
        # step loop; None for anything else, which the steps take from the start.
        end = data.find(b"\r\n\r\n")
        if not 0 <= end <= MAX_HEAD_BYTES:
            return None
        head = _LastHead.parse(data[: end + 2])
        if head.status < 200 or head.content_length != len(data) - end - 4:
            return None  # an interim head, a body in pieces or framed otherwise, or more bytes
        self._state = _DONE
        if not head.content_length:
            return [head, END_OF_MESSAGE]
        return [head, Data(data[end + 4:]), END_OF_MESSAGE]

    def _parse_head(self, events: list[Event]) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            return False
        if end > MAX_HEAD_BYTES:
            raise ProtocolError("response head too large")
        head = _LastHead.parse(self._buffer[: end + 2])
        self._buffer = self._buffer[end + 4:]
        if 100 <= head.status < 200:
            return True  # 1xx interim responses are skipped (RFC 9112 §6.3 rule 1)
        events.append(head)
        if head.chunked:
            self._state = _CHUNK_SIZE
        elif head.content_length is None:
            self._state = _UNTIL_CLOSE
        elif head.content_length:
            self._state, self._remaining = _LENGTH, head.content_length
        else:
            self._state = _DONE
            events.append(END_OF_MESSAGE)
        return True

    def _take_body(self, events: list[Event]) -> None:
        buffer = self._buffer
        if len(buffer) <= self._remaining:
            piece, self._buffer = buffer, b""
        else:
            piece, self._buffer = buffer[: self._remaining], buffer[self._remaining:]
        self._remaining -= len(piece)
        events.append(Data(piece))
        if not self._remaining:
            if self._state is _LENGTH:
                self._state = _DONE
                events.append(END_OF_MESSAGE)
            else:
                self._state = _CHUNK_END

    def _parse_chunk_size(self) -> bool:
        end = self._buffer.find(_CRLF)
        if end < 0 or end > MAX_CHUNK_LINE:
            if end > MAX_CHUNK_LINE or len(self._buffer) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk line too long")
            return False
        # RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF; extensions are ignored.
        size_text = self._buffer[:end].split(b";", 1)[0].strip(b" \t")
        self._buffer = self._buffer[end + 2:]
        if not size_text or len(size_text) > 16 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError("invalid chunk size")
        size = int(size_text, 16)
        if size:
            self._state, self._remaining = _CHUNK_DATA, size
        else:
            self._state = _TRAILERS  # RFC 9112 §7.1: last-chunk, then trailer section
        return True

    def _parse_chunk_end(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer[:2] != _CRLF:  # RFC 9112 §7.1: chunk-data is followed by CRLF
            raise ProtocolError("invalid chunk framing")
        self._buffer = self._buffer[2:]
        self._state = _CHUNK_SIZE
        return True

    def _skip_trailer_line(self, events: list[Event]) -> bool:
        end = self._buffer.find(_CRLF)
        if end < 0:
            if self._trailer_bytes + len(self._buffer) > MAX_TRAILER_BYTES:
                raise ProtocolError("trailer section too large")
            return False
        self._trailer_bytes += end + 2
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise ProtocolError("trailer section too large")
        self._buffer = self._buffer[end + 2:]
        if end == 0:
            # RFC 9112 §7.1.2: trailer fields may be discarded; they are never forwarded.
            self._state = _DONE
            events.append(END_OF_MESSAGE)
        return True
