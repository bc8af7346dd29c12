"""Admission: the gateway resource's method, media type, size and in-flight checks.

Everything found here is answered before decapsulation, with a plain status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import Protocol

from gateway.errors import (
    BadContentEncoding,
    BadMediaType,
    BadMethod,
    BodyTooLarge,
    OuterError,
    Overloaded,
    Result,
    TransferCodingNotImplemented,
)
from gateway.pipeline.deadlines import BodyDeadline
from gateway.pipeline.oneshot import handle_encapsulated
from gateway.pipeline.state import INTERNAL_ERROR, Answer, GatewayState, finish, outer_answer
from gateway.pipeline.streamed import StreamedAnswer, answer_chunked
from ohttp.chunked import CHUNKED_REQUEST_MEDIA_TYPE as OHTTP_CHUNKED_REQ
from ohttp.codings import only_chunked_transfer, only_identity_content
from ohttp.encapsulation import REQUEST_MEDIA_TYPE as OHTTP_REQ
from ohttp.errors import EncapsulationError, OHTTPError

__all__ = [
    "BodyChunks",
    "BodyReader",
    "BodyStream",
    "answer_request",
    "read_body_within",
    "read_chunks",
    "streams",
]

logger = logging.getLogger("gateway")

BodyReader = Callable[[int | None, int], Awaitable[bytes]]
"""``read(content_length, limit)``: the whole request body. Raises ``BodyTooLarge`` once more
than ``limit`` bytes arrive and ``EncapsulationError`` when fewer than ``content_length`` do;
``ConnectionError`` when the client goes away."""

BodyChunks = Callable[[], AsyncIterable[bytes]]
"""The request body as it arrives (for chunked requests, decrypted chunk by chunk)."""


async def answer_request(
    state: GatewayState,
    method: str,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
    *,
    body_chunks: BodyChunks | None = None,
    content_encoding: str | None = None,
    transfer_encoding: str | None = None,
) -> Answer | StreamedAnswer:
    """The gateway resource: GET/HEAD -> key configurations (RFC 9540 §5), POST -> OHTTP.

    A ``message/ohttp-chunked-req`` request that decrypts gets a :class:`StreamedAnswer`
    (read from ``body_chunks`` as it arrives, or from ``read_body`` if that is not given);
    every other outcome is an :class:`Answer`. ``ConnectionError`` from reading the body
    (the client went away) propagates to the transport. ``content_encoding`` is the request's
    Content-Encoding field values joined with commas (None when absent); ``transfer_encoding``
    the same for Transfer-Encoding. An answer with ``Connection: close`` ends the connection.
    """
    if transfer_encoding is not None and not only_chunked_transfer([transfer_encoding]):
        state.metrics.count(Result.MALFORMED)
        return outer_answer(TransferCodingNotImplemented())
    if method == "POST":
        return await _answer_post(
            state, content_type, content_length, read_body, body_chunks, encoding=content_encoding
        )
    if method in ("GET", "HEAD"):
        state.metrics.key_requests += 1
        document, headers = state.keys.current()
        return Answer(200, headers, document, None)
    state.metrics.count(Result.BAD_METHOD)
    return outer_answer(BadMethod())


def streams(content_type: str | None) -> bool:
    """Whether :func:`answer_request` may answer a request with this Content-Type by a
    :class:`StreamedAnswer` (chunked-08 §3: ``message/ohttp-chunked-req``)."""
    return (content_type or "").lower() == OHTTP_CHUNKED_REQ


def _media_type(content_type: str | None) -> str:
    # RFC 9458 §4.1 / §9.1, chunked-08 §8: the media type must match exactly; no parameters.
    lowered = (content_type or "").lower()
    if lowered not in (OHTTP_REQ, OHTTP_CHUNKED_REQ):
        raise BadMediaType()
    return lowered


def _check_content_encoding(content_encoding: str | None) -> None:
    if content_encoding is not None and not only_identity_content([content_encoding]):
        raise BadContentEncoding()


async def _answer_post(
    state: GatewayState,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
    body_chunks: BodyChunks | None,
    *,
    encoding: str | None,
) -> Answer | StreamedAnswer:
    started = perf_counter()
    slot = _Slot(state)
    answer: Answer | StreamedAnswer = INTERNAL_ERROR
    try:
        try:
            media_type = _media_type(content_type)
            _check_content_encoding(encoding)
            limit = state.config.max_body
            if content_length is not None and content_length > limit:
                raise BodyTooLarge()  # decided before reading a byte
            if media_type == OHTTP_CHUNKED_REQ:
                chunks = (
                    body_chunks()
                    if body_chunks is not None
                    else _one_read(read_body, content_length, limit)
                )
                answer = await answer_chunked(state, content_length, slot.after(chunks), started)
            else:
                data = await read_body(content_length, limit)
                slot.take()
                if not data:
                    raise EncapsulationError("empty request")
                answer = await handle_encapsulated(state, data)
        except (OuterError, OHTTPError) as exc:
            answer = outer_answer(exc)
    except ConnectionError:
        answer = _GONE
        raise  # the client went away while sending: the transport has nobody to answer
    except Exception as exc:  # a bug: a fixed 500, the type logged only, no traceback
        logger.error("internal_error", extra={"error": type(exc).__name__})
        answer = INTERNAL_ERROR
    finally:
        if not isinstance(answer, StreamedAnswer):  # a stream accounts for itself when closed
            slot.end(started, answer.result)
    return answer


class _Slot:
    """A request's place among ``max_in_flight``, taken only once its body is complete.

    Issue 13, finding 1: a client that sends a head and stalls holds no slot, so stalled
    bodies cannot lock others out (``body_timeout`` ends them).
    """

    __slots__ = ("_held", "_state")

    def __init__(self, state: GatewayState) -> None:
        self._state = state
        self._held = False

    def take(self) -> None:
        state = self._state
        if state.in_flight >= state.config.max_in_flight:
            raise Overloaded()
        state.in_flight += 1
        state.metrics.in_flight += 1
        self._held = True

    async def after(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, taking the slot once they are all read (before the request verifies)."""
        async for piece in chunks:
            yield piece
        self.take()

    def end(self, started: float, result: Result | None) -> None:
        if self._held:
            finish(self._state, started, result)  # gives the slot back
            return
        if result is not None:
            self._state.metrics.count(result)
        self._state.metrics.total_seconds.observe(perf_counter() - started)


_GONE = Answer(0, {}, b"", None)  # the client left: nothing answered, nothing counted


async def _one_read(
    read_body: BodyReader, content_length: int | None, limit: int
) -> AsyncIterator[bytes]:
    # For transports without a streaming path: the whole body as one piece.
    yield await read_body(content_length, limit)


async def read_chunks(
    chunks: AsyncIterable[bytes], content_length: int | None, limit: int
) -> bytes:
    """A ``BodyReader`` over body chunks, for transports without a one-read path."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:  # enforced while reading when no Content-Length bounds it
            raise BodyTooLarge()
        parts.append(chunk)
    if content_length is not None and size != content_length:
        raise EncapsulationError("request body truncated")
    return b"".join(parts)


class BodyStream(Protocol):
    """A request body as it arrives: aiohttp's ``StreamReader`` and the engine's ``Body``."""

    def read_nowait(self, n: int) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...
    def iter_any(self) -> AsyncIterator[bytes]: ...


async def read_body_within(
    body: BodyStream, content_length: int | None, limit: int, deadline: BodyDeadline
) -> bytes:
    """The whole body (a ``BodyReader`` for ``answer_request``) within ``deadline``."""
    if content_length is None:  # chunked transfer coding: bounded while reading
        return await deadline.read(read_chunks(body.iter_any(), None, limit))
    # The pipeline checked the length against the limit already. A small body has usually
    # arrived with the head: take it from the buffer without another await (and so without
    # the deadline's timer, which only bounds waiting).
    data = body.read_nowait(content_length) if content_length else b""
    if len(data) == content_length:
        return data
    try:
        return data + await deadline.read(body.readexactly(content_length - len(data)))
    except asyncio.IncompleteReadError:
        raise EncapsulationError("request body truncated") from None
