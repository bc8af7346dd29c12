"""Forwarding one client POST to the gateway and its answer back (RFC 9458 §6.2).

The request is admitted without reading its body (it takes an in-flight slot only once the
body is complete or starts streaming upstream), the body is sent upstream with a fresh
minimal header set, and the gateway's answer comes back with only the fields a client needs.
Every refusal is raised as a ``relay.errors`` exception; the route wrapper answers it. The
client side is a ``relay.exchange.ClientRequest``: the same code serves both transports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ClassVar

from ohttp.chunked import CHUNKED_REQUEST_MEDIA_TYPE, CHUNKED_RESPONSE_MEDIA_TYPE
from ohttp.codings import only_identity_content
from ohttp.encapsulation import REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE
from relay.config import RelayConfig
from relay.errors import (
    BodyTooLarge,
    ClientAborted,
    ClientTimeout,
    EmptyRequest,
    GatewayRefused,
    GatewayUnavailable,
    Overloaded,
    RequestTooLarge,
    UnsupportedContentCoding,
    UnsupportedMediaType,
    UpstreamError,
)
from relay.exchange import Answer, ClientRequest
from relay.h1 import ResponseHead
from relay.headers import SF_BOOLEANS, passed_fields, valid_retry_after
from relay.metrics import Direction, Result
from relay.state import RelayState
from relay.upstream import UpstreamPool, UpstreamResponse

REQUEST_TYPES = frozenset({REQUEST_MEDIA_TYPE, CHUNKED_REQUEST_MEDIA_TYPE})
RESPONSE_TYPES = frozenset({RESPONSE_MEDIA_TYPE, CHUNKED_RESPONSE_MEDIA_TYPE})
SMALL_BODY = 64 * 1024  # bodies up to this size are read whole and sent in one write
Fields = tuple[tuple[str, str], ...]  # a tuple: the engine keeps its encoding for repeats
FieldValues = Callable[[str], list[str]]  # a request's values of a (lower-case) field name

# As module names: an enum member looked up on its class costs several times a global's.
_FORWARDED, _GATEWAY_CLIENT_ERROR = Result.FORWARDED, Result.GATEWAY_CLIENT_ERROR
UPSTREAM_BYTES, DOWNSTREAM_BYTES = Direction.UPSTREAM, Direction.DOWNSTREAM


async def forward(request: ClientRequest, state: RelayState, name: str, *,
                  counted: bool = False) -> Answer | None:
    """Forward ``request`` (a POST) to the gateway called ``name``: the answer to send, or
    None when a streamed answer was sent through ``request``. ``counted``: the rate limit
    admitted it already (the engine's lane did, then handed it over)."""
    length = request.content_length
    if state.limiter is not None and not counted:  # first: the rate limit, then the rest
        await state.limiter.admit(request.peer)
    media_type = admit(request.fields, length, request.body_exists, state.config)
    slot = InFlightSlot(state)
    try:
        response = await _send(request, state, state.pools[name], media_type, length, slot=slot)
        return await answer_response(request, state, name, response)
    finally:
        slot.release()


async def answer_response(request: ClientRequest, state: RelayState, name: str,
                          response: UpstreamResponse) -> Answer | None:
    """The answer to the gateway ``name``'s ``response`` (whose head has arrived), or None
    when it was streamed through ``request``."""
    try:
        answer = await _respond(request, state, response)
    finally:
        response.abort()  # no-op when the body was read completely and the connection pooled
    if answer is not None and answer.status == 422:  # maybe the #ohttp-key problem
        await state.mirrors[name].after_answer(answer.status, answer.content_type, answer.body)
    return answer


def admit(fields: FieldValues, length: int | None, body_exists: bool,
          config: RelayConfig) -> str:
    """Checks that need no body: media type, coding, size (RFC 9458 §5).

    Returns the request's media type (one of REQUEST_TYPES).
    """
    content_types = fields("content-type")
    # Exact match, no parameters: RFC 9458 §9 registers the types without parameters.
    media_type = content_types[0].strip().lower() if len(content_types) == 1 else None
    if media_type not in REQUEST_TYPES:
        raise UnsupportedMediaType("media type")
    if content_codings := fields("content-encoding"):
        _check_content_encoding(content_codings)
    if length is not None and length > config.max_body_bytes:
        raise RequestTooLarge("declared length")
    if length == 0 or (length is None and not body_exists):
        raise EmptyRequest("no body")
    assert media_type is not None
    return media_type


def _check_content_encoding(values: list[str]) -> None:
    # RFC 9110 §8.4, §15.5.16: any coding but identity is refused before the body is read
    # (the app never decompresses: auto_decompress is off).
    if not only_identity_content(values):
        raise UnsupportedContentCoding("content coding")


# The only client-derived values that go upstream, as ready header lines (RFC 9458 §6.2).
_CONTENT_TYPE_LINES = {t: f"content-type: {t}\r\n".encode() for t in REQUEST_TYPES}
_INCREMENTAL_LINES = {v: f"incremental: {v}\r\n".encode() for v in SF_BOOLEANS}


def upstream_headers(fields: FieldValues, media_type: str, config: RelayConfig) -> bytes:
    """A fresh minimal set (RFC 9458 §6.2): nothing the client sent except these.

    Content-Length or Transfer-Encoding is added by the upstream client from the framing.
    """
    lines = _CONTENT_TYPE_LINES[media_type]
    incremental = fields("incremental")
    if len(incremental) == 1:
        lines += _INCREMENTAL_LINES.get(incremental[0].strip(), b"")
    if config.gateway_token:
        lines += f"authorization: Bearer {config.gateway_token}\r\n".encode("latin-1")
    return lines


async def _read_some(request: ClientRequest, deadline: float) -> bytes:
    # The client side's boundary: the transport's and asyncio's errors become the relay's own.
    remaining = deadline - time.monotonic()
    try:
        async with asyncio.timeout(max(remaining, 0.0)):
            return await request.readany()
    except TimeoutError:
        raise ClientTimeout("body deadline") from None
    except Exception:
        raise ClientAborted("body read failed") from None


class _StreamedBody:
    """The client's body as it arrives, within the size limit and the body deadline; a piece is
    counted once the upstream asks for the next. (A class: mypyc has no async generators.)"""

    def __init__(self, request: ClientRequest, first: bytes, state: RelayState,
                 deadline: float) -> None:
        self._request, self._state, self._deadline = request, state, deadline
        self._first: bytes | None = first
        self._total = len(first)
        self._uncounted = 0
        self._ended = False

    def __aiter__(self) -> _StreamedBody:
        return self

    async def __anext__(self) -> bytes:
        first, self._first = self._first, None
        if first is not None:
            return first
        if self._ended:
            raise StopAsyncIteration
        if self._uncounted:
            self._state.metrics.add_bytes(UPSTREAM_BYTES, self._uncounted)
            self._uncounted = 0
        self._ended = True  # until a piece comes: an end or an error is final, as a generator's
        piece = await _read_some(self._request, self._deadline)
        if not piece:
            raise StopAsyncIteration
        self._total += len(piece)
        if self._total > self._state.config.max_body_bytes:
            raise BodyTooLarge("streamed length")
        self._ended = False
        self._uncounted = len(piece)
        return piece


async def _read_small(request: ClientRequest, length: int, deadline: float) -> bytes:
    # Usually the whole small body arrived with the head: take it without waiting.
    body = request.read_nowait()
    if len(body) >= length:
        return body
    collected = bytearray(body)
    while len(collected) < length:
        piece = await _read_some(request, deadline)
        if not piece:
            raise ClientAborted("body ended early")
        collected += piece
    return bytes(collected)


class InFlightSlot:
    """A request's place among ``max_in_flight``, taken once its body is complete or its
    streaming upstream begins (issue 13, finding 1: a stalled body holds no slot)."""

    __slots__ = ("_held", "_state")

    def __init__(self, state: RelayState) -> None:
        self._state = state
        self._held = False

    def take(self) -> None:
        state = self._state
        if state.in_flight >= state.config.max_in_flight:
            raise Overloaded("in-flight cap")
        state.in_flight += 1
        self._held = True

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self._held:
            self._held = False
            self._state.in_flight -= 1


async def _send_streamed(request: ClientRequest, state: RelayState, pool: UpstreamPool,
                        headers: bytes, length: int | None, *,
                        deadline: float, slot: InFlightSlot) -> UpstreamResponse:
    """Send a large or unsized body upstream as it arrives."""
    first = await _read_some(request, deadline)
    if not first:
        raise EmptyRequest("no body")
    slot.take()
    state.metrics.add_bytes(UPSTREAM_BYTES, len(first))
    if length is not None:
        headers += b"content-length: %d\r\n" % length
    stream = _StreamedBody(request, first, state, deadline)
    return await pool.request("POST", headers, stream, chunked=length is None)


async def _send(request: ClientRequest, state: RelayState, pool: UpstreamPool,
                media_type: str, length: int | None, *, slot: InFlightSlot) -> UpstreamResponse:
    started = time.monotonic()
    deadline = started + state.config.body_timeout
    headers = upstream_headers(request.fields, media_type, state.config)
    if length is not None and length <= SMALL_BODY:
        # The common case, inline: the small body in the same write as the head.
        body = await _read_small(request, length, deadline)
        slot.take()
        state.metrics.add_bytes(UPSTREAM_BYTES, len(body))
        response = await pool.request("POST", headers, body, chunked=False)
    else:
        response = await _send_streamed(request, state, pool, headers, length, deadline=deadline,
                                        slot=slot)
    state.metrics.observe_latency(time.monotonic() - started)
    return response


def _passed_status(head: ResponseHead) -> int:
    """The gateway's status if it may reach the client, else the refusal to answer instead."""
    status = head.status
    if 200 <= status < 300 and head.media_type not in RESPONSE_TYPES:
        raise GatewayRefused("wrong media type")
    if status == 503:
        # Load shedding is worth passing on, with the relay's own body and a checked Retry-After.
        retry = (head.get("retry-after") or "").strip()
        raise GatewayUnavailable(retry if valid_retry_after(retry) else None)
    if not (200 <= status < 300 or 400 <= status < 500):
        # 3xx (never followed), 5xx and malformed 2xx: no gateway detail reaches the client.
        raise GatewayRefused("status not passed on")
    return status


def _passed_result(status: int) -> Result:
    return _FORWARDED if status < 300 else _GATEWAY_CLIENT_ERROR


class ClientHead:
    """What the client gets of a gateway head: its status and the passed fields (only valid
    values of known fields). ``relay.h1`` hands out one object for heads of the same bytes, so
    the last one's answer is kept and a repeat costs an identity check."""

    head: ClassVar[ResponseHead | None] = None
    answer: ClassVar[tuple[int, Fields]] = (0, ())

    @classmethod
    def of(cls, head: ResponseHead) -> tuple[int, Fields]:
        if head is not cls.head:
            cls.answer = (_passed_status(head), tuple(passed_fields(head.headers)))  # may refuse
            cls.head = head
        return cls.answer


async def _respond(request: ClientRequest, state: RelayState,
                   upstream: UpstreamResponse) -> Answer | None:
    head = upstream.head
    status, headers = ClientHead.of(head)  # shared by answers to heads of the same bytes
    if small_body(head):
        return await _respond_small(state, upstream, status, headers)
    await request.start(status, headers, head.content_length)
    if await _copy_body(request, state, upstream):
        state.metrics.count(_passed_result(status))
        await request.end()
    return None


async def _respond_small(state: RelayState, upstream: UpstreamResponse, status: int,
                         headers: Fields) -> Answer:
    """A small fixed-length answer is sent in one write; it has no chunks to deliver early."""
    body = upstream.read_complete(SMALL_BODY)
    if body is None:
        body = await upstream.read(SMALL_BODY)
    count_small(state, status, body)
    return Answer(status, headers, body)


def small_body(head: ResponseHead) -> bool:
    """Whether the gateway's answer has a body of known size small enough to pass on whole."""
    return head.content_length is not None and head.content_length <= SMALL_BODY


def count_small(state: RelayState, status: int, body: bytes) -> None:
    """Count a gateway's small answer with ``status`` and ``body``, passed on whole."""
    state.metrics.add_bytes(DOWNSTREAM_BYTES, len(body))
    state.metrics.count(_passed_result(status))


async def _copy_body(request: ClientRequest, state: RelayState,
                     upstream: UpstreamResponse) -> bool:
    """Stream the gateway's body; on failure close the client connection so it sees truncation."""
    try:
        async for piece in upstream.chunks():
            # each piece is written (flushed) as it arrives; a client that stalls is dropped
            await request.write(piece)
            state.metrics.add_bytes(DOWNSTREAM_BYTES, len(piece))
    except UpstreamError as exc:
        state.metrics.count(exc.result)  # the head is sent: only the metric can tell
    except (ConnectionError, asyncio.CancelledError):
        state.metrics.count(Result.CLIENT_ABORTED)
        upstream.abort()
        raise
    else:
        return True
    upstream.abort()
    request.truncate()  # no final chunk: the client sees an incomplete response
    return False
