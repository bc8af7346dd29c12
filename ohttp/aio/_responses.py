"""What the client hands out: the decrypted inner response, whole or as a chunked stream."""

from __future__ import annotations

import http
import json as jsonlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ohttp import bhttp
from ohttp.aio._errors import (
    InvalidInnerResponse,
    ResponseDecryptionError,
    StreamTruncated,
    network_errors,
)
from ohttp.chunked import ChunkedResponseDecoder
from ohttp.encapsulation import ClientResponseOpener
from ohttp.errors import PROBLEM_DATE, PROBLEM_JSON, ChunkedError, EncapsulationError, OHTTPError
from ohttp.httpdate import parse_http_date


class _Status:
    """``reason`` and ``ok`` of an inner response's status."""

    __slots__ = ()
    status: int

    @property
    def reason(self) -> str:
        return reason(self.status)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class InnerResponse(_Status):
    """The gateway's answer, decrypted: the target's status, header fields and content."""

    status: int
    headers: CIMultiDictProxy[str]
    content: bytes

    def text(self, encoding: str = "utf-8") -> str:
        return self.content.decode(encoding, errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class ChunkedBody:
    """A chunked response as it arrives: decrypted chunk by chunk (chunked-08 §5, §6.2), then
    decoded as Binary HTTP events (RFC 9292, either framing)."""

    def __init__(
        self, response: aiohttp.ClientResponse, decoder: ChunkedResponseDecoder, limit: int
    ) -> None:
        self._response = response
        self._decoder = decoder
        self._framing = bhttp.StreamingResponseDecoder(bhttp.Limits(max_content_bytes=limit))
        self.received = 0
        self.finished = False  # the final chunk verified and the message decoded

    async def head(self) -> tuple[bhttp.Response, list[bhttp.StreamEvent]]:
        """The response head, and the events that arrived with it."""
        events: list[bhttp.StreamEvent] = []
        while not self.finished:
            events += await self.events()
            for index, event in enumerate(events):
                if isinstance(event, bhttp.ResponseHead):
                    return event.response, events[index + 1 :]
        raise InvalidInnerResponse()

    async def events(self) -> list[bhttp.StreamEvent]:
        """The events the next bytes complete; at the end of the stream, the last ones."""
        while True:
            # A connection that ends inside the message truncates it.
            with network_errors(StreamTruncated()):
                data = await self._response.content.readany()
            if data:
                self.received += len(data)
                plaintexts = _decrypted(self._decoder.feed, data)
            else:
                plaintexts = _decrypted(self._decoder.close)  # raises without a final chunk
            events = [event for part in plaintexts for event in _decoded(self._framing.feed, part)]
            if not data:
                events += _decoded(self._framing.close)
                self.finished = True
            if events or self.finished:
                return events

    def close(self) -> None:
        if self.finished:
            self._response.release()
        else:  # the connection is inside a message: it cannot go back to the pool
            self._response.close()


def _decrypted(step: Callable[..., list[bytes]], *data: bytes) -> list[bytes]:
    try:
        return step(*data)
    except (ChunkedError, EncapsulationError) as exc:
        if not data:  # at the end: no final chunk (§7.1), or not even the response nonce
            raise StreamTruncated() from exc
        raise ResponseDecryptionError() from exc
    except OHTTPError as exc:
        raise ResponseDecryptionError() from exc


def _decoded(step: Callable[..., list[bhttp.StreamEvent]], *data: bytes) -> list[bhttp.StreamEvent]:
    try:
        return step(*data)
    except OHTTPError as exc:
        raise InvalidInnerResponse() from exc


class ResponseStream(_Status):
    """A streamed inner response: status and header fields at once, the content as it
    arrives (``async for chunk in response``, or ``await response.read()``)."""

    def __init__(
        self, head: bhttp.Response, body: ChunkedBody, pending: list[bhttp.StreamEvent]
    ) -> None:
        self.status = head.status
        self.headers = header_dict(head.headers)
        self.trailers: CIMultiDictProxy[str] | None = None  # set once the content ended
        self._body = body
        self._pending = pending
        self._iterating = False

    @property
    def complete(self) -> bool:
        """True once the final chunk verified and the whole message decoded (§7.1)."""
        return self._body.finished and not self._pending

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterating:
            raise RuntimeError("a response stream is read once")
        self._iterating = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            events, self._pending = self._pending, []
            for event in events:
                if isinstance(event, bhttp.ContentChunk):
                    yield event.data
                elif isinstance(event, bhttp.MessageEnd):
                    self.trailers = header_dict(event.trailers)
            if self._body.finished:
                return
            self._pending = await self._body.events()

    async def read(self) -> bytes:
        """The rest of the content, once the stream has ended with its final chunk."""
        return b"".join([chunk async for chunk in self])

    async def _buffer(self) -> bytes:
        """Read to the end without consuming: the content stays to be iterated."""
        while not self._body.finished:
            self._pending += await self._body.events()
        return b"".join(e.data for e in self._pending if isinstance(e, bhttp.ContentChunk))

    def close(self) -> None:
        """Release the connection (closed if the stream did not end)."""
        self._body.close()


async def stream_date_offset(response: ResponseStream, now: float) -> float | None:
    # Only a 400 problem document can be the #date problem; it is small and sent whole.
    if response.status != 400 or PROBLEM_JSON not in response.headers.get("Content-Type", ""):
        return None
    content = await response._buffer()
    return server_time_offset(InnerResponse(response.status, response.headers, content), now)


def header_dict(fields: bhttp.Fields) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(
        CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in fields)
    )


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def problem_type(content_type: str, body: bytes) -> str | None:
    """The ``type`` member of an RFC 9457 problem document, if ``body`` is one."""
    if content_type.split(";", maxsplit=1)[0].strip().lower() != PROBLEM_JSON:
        return None
    try:
        problem = jsonlib.loads(body)
    except ValueError:
        return None
    kind = problem.get("type") if isinstance(problem, dict) else None
    return kind if isinstance(kind, str) else None


def open_response(opener: ClientResponseOpener, body: bytes) -> InnerResponse:
    try:
        plaintext = opener.open(body)
    except OHTTPError as exc:
        raise ResponseDecryptionError() from exc
    try:
        message = bhttp.decode_response(plaintext)
    except OHTTPError as exc:
        raise InvalidInnerResponse() from exc
    return InnerResponse(message.status, header_dict(message.headers), message.content)


def server_time_offset(response: InnerResponse, now: float) -> float | None:
    """Server clock minus ours, if ``response`` is the RFC 9458 §6.5.2 ``#date`` problem."""
    if response.status != 400:
        return None
    content_type = response.headers.get("Content-Type", "")
    if problem_type(content_type, response.content) != PROBLEM_DATE:
        return None
    # RFC 9110 §5.6.7: a Date that is no representable HTTP-date is ignored, never raised.
    server_time = parse_http_date(response.headers.get("Date", ""))
    return None if server_time is None else server_time - now
