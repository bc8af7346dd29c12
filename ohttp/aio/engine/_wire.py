"""Serialising response heads (RFC 9112 §4, §6) and the engine's fixed answers."""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import ClassVar

__all__ = ["OVER_CAPACITY", "TEXT_PLAIN", "fixed_page", "fixed_text", "keep_alive_10",
           "response_head", "whole_response"]

# Over the connection cap: answered without reading the request, then closed.
OVER_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)

TEXT_PLAIN = ("Content-Type", "text/plain; charset=utf-8")

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, phrase) for status, phrase in _REASONS.items()
}
_ENDS = {  # (close, keep_alive_10): the connection option, then the empty line
    (True, False): b"Connection: close\r\n\r\n",
    (True, True): b"Connection: close\r\n\r\n",
    # RFC 9112 §9.3: an HTTP/1.0 client must be told the connection stays open
    (False, True): b"Connection: keep-alive\r\n\r\n",
    (False, False): b"\r\n",
}


def keep_alive_10(keep_alive: bool, http_version: str) -> bool:
    """Whether an answer must say ``Connection: keep-alive``: to an HTTP/1.0 client whose
    connection stays open (RFC 9112 §9.3)."""
    return keep_alive and http_version == "1.0"


class _DateLine:
    # RFC 9110 §6.6.1: an origin server with a clock sends Date; formatted once a second.

    second: ClassVar[int] = -1
    line: ClassVar[bytes] = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.line = b"Date: " + formatdate(second, usegmt=True).encode() + b"\r\n"
            cls.second = second
        return cls.line


# Field lines of the tuples of fields seen last: a server's common answers repeat theirs
# (the relay's, say, from one gateway head), so each costs a lookup instead of a build.
# Bounded, and only for tuples, which cannot change once made; keyed by equality, which is
# identity of the text for the (str, str) pairs the engine takes.
_FIELD_LINES: dict[tuple[tuple[str, str], ...], bytes] = {}
_FIELD_LINES_MAX = 64


def _field_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    if type(headers) is tuple:
        lines = _FIELD_LINES.get(headers)
        if lines is None:
            if len(_FIELD_LINES) >= _FIELD_LINES_MAX:
                _FIELD_LINES.clear()
            lines = _FIELD_LINES[headers] = _encode_fields(headers)
        return lines
    return _encode_fields(headers)


def _encode_fields(headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


def response_head(
    status: int, headers: Iterable[tuple[str, str]], framing: bytes, *, close: bool,
    keep_alive_10: bool = False,
) -> bytes:
    """Status line, ``headers``, Date, the framing line(s) (``Content-Length: N\\r\\n`` or
    ``Transfer-Encoding: chunked\\r\\n``) and the connection option, then the empty line."""
    status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
    return b"".join((status_line, _field_lines(headers), _DateLine.now(), framing,
                     _ENDS[close, keep_alive_10]))


def whole_response(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, *, close: bool,
    keep_alive_10: bool, head_only: bool,
) -> bytes:
    """A whole answer framed by its Content-Length; ``head_only`` (the answer to HEAD) leaves
    the body out (RFC 9110 §9.3.2)."""
    head = response_head(status, headers, b"Content-Length: %d\r\n" % len(body), close=close,
                         keep_alive_10=keep_alive_10)
    return head if head_only else head + body


def fixed_text(status: int) -> bytes:
    """The fixed body of an error answer: status and reason phrase, nothing of the request
    (the same text as the aiohttp shell's fixed error pages)."""
    return b"%d %s\n" % (status, _REASONS.get(status, b"Error"))


def fixed_page(status: int, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A whole error answer (:func:`fixed_text`) that closes the connection."""
    text = fixed_text(status)
    framing = b"Content-Length: %d\r\n" % len(text)
    return response_head(status, [TEXT_PLAIN, *extra], framing, close=True) + text
