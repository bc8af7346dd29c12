"""The gateway's request handling, independent of the HTTP server in front of it.

One request to the gateway resource, as method + Content-Type + Content-Length + a body reader
in, and one ``Answer`` (status, headers, body, metric result) out:
outer checks -> decapsulate -> Binary HTTP -> policy -> backend -> seal (RFC 9458 §5).
``gateway.app`` (aiohttp) and ``gateway.asgi`` (ASGI) both serve it, so both transports give
byte-identical answers. Which answer each error gets is decided in ``gateway.errors`` alone.

This is the hot path: answers that do not depend on the request are built once, metrics are
plain counters (``gateway.metrics``), and nothing here logs unless something failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
)
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import NamedTuple, TypeVar

from gateway.backends import (
    Backend,
    BackendError,
    BackendTimeout,
    HttpOriginBackend,
    StreamedResponse,
    StreamingBackend,
    backend_authority,
)
from gateway.config import GatewayConfig, TargetPolicy
from gateway.errors import (
    BadMediaType,
    BadMethod,
    BodyTooLarge,
    ExpectNotAllowed,
    ForbiddenTarget,
    GatewayError,
    Overloaded,
    Result,
    inner_reply,
    outer_reply,
)
from gateway.metrics import GatewayMetrics
from gateway.replay import ReplayGuard
from ohttp import bhttp
from ohttp.chunked import (
    CHUNKED_REQUEST_MEDIA_TYPE as OHTTP_CHUNKED_REQ,
)
from ohttp.chunked import (
    CHUNKED_RESPONSE_MEDIA_TYPE as OHTTP_CHUNKED_RES,
)
from ohttp.chunked import (
    ChunkedRequestDecoder,
    ChunkedResponseEncoder,
    ChunkLimits,
)
from ohttp.encapsulation import REQUEST_MEDIA_TYPE as OHTTP_REQ
from ohttp.encapsulation import RESPONSE_MEDIA_TYPE as OHTTP_RES
from ohttp.encapsulation import decapsulate_request
from ohttp.errors import EncapsulationError, OHTTPError
from ohttp.keys import KEYS_MEDIA_TYPE as OHTTP_KEYS
from ohttp.keys import KeyRing

__all__ = [
    "OHTTP_CHUNKED_REQ",
    "OHTTP_CHUNKED_RES",
    "OHTTP_KEYS",
    "OHTTP_REQ",
    "OHTTP_RES",
    "Answer",
    "BodyChunks",
    "BodyReader",
    "StreamAborted",
    "StreamedAnswer",
    "GatewayState",
    "KeyDocument",
    "answer_request",
    "handle_encapsulated",
    "inner_answer",
    "read_chunks",
]


logger = logging.getLogger("gateway")

_T = TypeVar("_T")

# RFC 9458 §5: the outer response carries only what is needed and nothing that depends on the
# encapsulated response; this fixed set is all the gateway adds.
_RES_HEADERS: Mapping[str, str] = {"Content-Type": OHTTP_RES}
# draft-ietf-ohai-chunked-ohttp-08 §3: a chunked response is marked with the Incremental field so
# intermediaries forward each part as it arrives instead of buffering the whole message.
_CHUNKED_RES_HEADERS: Mapping[str, str] = {
    "Content-Type": OHTTP_CHUNKED_RES,
    "Incremental": "?1",
}

BodyReader = Callable[[int | None, int], Awaitable[bytes]]
"""``read(content_length, limit)``: the whole request body. Raises ``BodyTooLarge`` once more
than ``limit`` bytes arrive and ``EncapsulationError`` when fewer than ``content_length`` do;
``ConnectionError`` when the client goes away."""

BodyChunks = Callable[[], AsyncIterable[bytes]]
"""The request body as it arrives (for chunked requests, decrypted chunk by chunk)."""


class KeyDocument:
    """A key ring and its public ``application/ohttp-keys`` document.

    The document is recomputed at most once per second, and only from the key schedule, so
    every client gets the same bytes (checklist K1).
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._second = -1
        self._headers: dict[str, str] = {}
        self._body = b""

    def current(self) -> tuple[bytes, dict[str, str]]:
        now = int(time.time())
        if now != self._second:
            self._body = self.ring.encode_public(now)
            # RFC 9540 §5 / checklist K4: cacheable, never no-store or private.
            max_age = max(0, self.ring.max_age(now))
            self._headers = {"Content-Type": OHTTP_KEYS, "Cache-Control": f"max-age={max_age}"}
            self._second = now
        return self._body, self._headers


class BackendDeadlines:
    """Bounds each backend call by one fixed timeout without a timer per call.

    ``asyncio.timeout`` schedules and cancels a timer handle per call (about 10 µs of the
    hot path). Here a call registers its task and deadline in a dict; with one timeout for
    all calls, insertion order is deadline order, so a single timer at the earliest pending
    deadline is enough. When it fires it cancels the tasks past their deadline and re-arms
    itself for the next one. A cancelled call raises ``TimeoutError``, as with
    ``asyncio.timeout`` (whose cancel/uncancel protocol this follows). A task runs one call
    at a time.
    """

    __slots__ = ("_due", "_expired", "_loop", "_timeout", "_timer")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, awaitable: Awaitable[_T]) -> _T:
        """``await awaitable``, or ``TimeoutError`` once the timeout elapsed."""
        task = asyncio.current_task()
        if task is None:  # as asyncio.timeout: without a task there is nothing to cancel
            raise RuntimeError("backend calls must run inside a task")
        loop = asyncio.get_running_loop()
        due = loop.time() + self._timeout
        cancelling = task.cancelling()
        if self._loop is not loop:  # a state reused by a new loop: forget the old one's calls
            self._due.clear()
            self._expired.clear()
            self._loop, self._timer = loop, None
        self._due[task] = due
        if self._timer is None:
            self._timer = loop.call_at(due, self._expire)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                if task.uncancel() <= cancelling:  # our cancel, and nobody else's
                    raise TimeoutError() from None
            raise
        finally:
            self._due.pop(task, None)
            if task in self._expired:  # cancelled after the call ended its own way
                self._expired.discard(task)
                task.uncancel()

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for task, due in self._due.items():
            if due > now:
                self._timer = loop.call_at(due, self._expire)
                return
            if task not in self._expired:
                self._expired.add(task)
                task.cancel()


@dataclass(eq=False)
class GatewayState:
    """What the handlers share. ``keys`` is swapped whole on reload."""

    config: GatewayConfig
    keys: KeyDocument
    backend: Backend
    metrics: GatewayMetrics
    policy: TargetPolicy
    replay: ReplayGuard
    limits: bhttp.Limits
    deadlines: BackendDeadlines
    in_flight: int = 0

    @classmethod
    def from_config(
        cls,
        config: GatewayConfig,
        keys: KeyRing,
        backend: Backend,
        *,
        metrics: GatewayMetrics | None = None,
        policy: TargetPolicy | None = None,
    ) -> GatewayState:
        """The state for ``config``. ``policy`` defaults to the backend's own authority (if
        it has one, ``backends.backend_authority``) plus ``config.allow_target``; a policy
        that allows nothing is a configuration error (every request would get a 403)."""
        if policy is None:
            policy = config.target_policy(backend_authority(backend))
        if not policy.allowed:
            raise ValueError("no target authority allowed: set allow_target")
        if metrics is None:
            metrics = GatewayMetrics()
        if isinstance(backend, HttpOriginBackend):
            metrics.pool_use = backend.pool_use
        return cls(
            config=config,
            keys=KeyDocument(keys),
            backend=backend,
            metrics=metrics,
            policy=policy,
            replay=ReplayGuard(
                config.date_window,
                require_date=config.require_date,
                max_entries=config.replay_cache_size,
            ),
            limits=bhttp.Limits(max_content_bytes=config.max_body),
            deadlines=BackendDeadlines(config.backend_timeout),
        )


class Answer(NamedTuple):
    """What to send back: status, header fields, body; ``result`` is for metrics only
    (None for key-configuration requests)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    result: Result | None


_INTERNAL_ERROR = Answer(500, {}, b"", Result.BACKEND_ERROR)
_OUTER_ANSWERS: dict[type[BaseException], Answer] = {}


def _outer(exc: BaseException) -> Answer:
    # Each error class always gets the same precomputed answer: build it once.
    answer = _OUTER_ANSWERS.get(type(exc))
    if answer is None:
        reply = outer_reply(exc)
        if reply is None:  # not reachable for the errors passed here
            return _INTERNAL_ERROR
        answer = Answer(reply.status, reply.headers, reply.body, reply.result)
        _OUTER_ANSWERS[type(exc)] = answer
    return answer


async def answer_request(
    state: GatewayState,
    method: str,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
    *,
    body_chunks: BodyChunks | None = None,
) -> Answer | StreamedAnswer:
    """The gateway resource: GET/HEAD -> key configurations (RFC 9540 §5), POST -> OHTTP.

    A ``message/ohttp-chunked-req`` request that decrypts gets a :class:`StreamedAnswer`
    (read from ``body_chunks`` as it arrives, or from ``read_body`` if that is not given);
    every other outcome is an :class:`Answer`. ``ConnectionError`` from reading the body
    (the client went away) propagates to the transport.
    """
    if method == "POST":
        return await _answer_post(state, content_type, content_length, read_body, body_chunks)
    if method in ("GET", "HEAD"):
        state.metrics.key_requests += 1
        document, headers = state.keys.current()
        return Answer(200, headers, document, None)
    state.metrics.count(Result.BAD_METHOD)
    return _outer(BadMethod())


def _media_type(content_type: str | None) -> str:
    # RFC 9458 §4.1 / §9.1, chunked-08 §8: the media type must match exactly; no parameters.
    lowered = (content_type or "").lower()
    if lowered not in (OHTTP_REQ, OHTTP_CHUNKED_REQ):
        raise BadMediaType()
    return lowered


async def _answer_post(
    state: GatewayState,
    content_type: str | None,
    content_length: int | None,
    read_body: BodyReader,
    body_chunks: BodyChunks | None,
) -> Answer | StreamedAnswer:
    metrics = state.metrics
    if state.in_flight >= state.config.max_in_flight:
        metrics.count(Result.OVERLOADED)
        return _outer(Overloaded())
    started = perf_counter()
    state.in_flight += 1
    metrics.in_flight += 1
    answer: Answer | StreamedAnswer = _INTERNAL_ERROR
    try:
        try:
            media_type = _media_type(content_type)
            limit = state.config.max_body
            if content_length is not None and content_length > limit:
                raise BodyTooLarge()  # decided before reading a byte
            if media_type == OHTTP_CHUNKED_REQ:
                chunks = (
                    body_chunks()
                    if body_chunks is not None
                    else _one_read(read_body, content_length, limit)
                )
                answer = await _answer_chunked(state, content_length, chunks, started)
            else:
                data = await read_body(content_length, limit)
                if not data:
                    raise EncapsulationError("empty request")
                answer = await handle_encapsulated(state, data)
        except (GatewayError, OHTTPError) as exc:
            answer = _outer(exc)
    except ConnectionError:
        answer = _GONE
        raise  # the client went away while sending: the transport has nobody to answer
    except Exception as exc:  # a bug: a fixed 500, the type logged only, no traceback
        logger.error("internal_error", extra={"error": type(exc).__name__})
        answer = _INTERNAL_ERROR
    finally:
        if not isinstance(answer, StreamedAnswer):  # a stream accounts for itself when closed
            _finish(state, started, answer.result)
    return answer


_GONE = Answer(0, {}, b"", None)  # the client left: nothing answered, nothing counted


def _finish(state: GatewayState, started: float, result: Result | None) -> None:
    state.in_flight -= 1
    state.metrics.in_flight -= 1
    if result is not None:
        state.metrics.count(result)
    state.metrics.total_seconds.observe(perf_counter() - started)


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


async def handle_encapsulated(state: GatewayState, body: bytes) -> Answer:
    """One ``message/ohttp-req`` body -> the outer answer (RFC 9458 §5.2)."""
    try:
        started = perf_counter()
        inner, sealer = decapsulate_request(state.keys.ring, body)
        state.metrics.decapsulate_seconds.observe(perf_counter() - started)
    except OHTTPError as exc:
        return _outer(exc)
    encoded, result = await inner_answer(state, inner, sealer.enc)
    return Answer(200, _RES_HEADERS, sealer.seal(encoded), result)


async def inner_answer(state: GatewayState, inner: bytes, enc: bytes) -> tuple[bytes, Result]:
    """Inner layer (RFC 9458 §5.2): every answer is an encoded Binary HTTP response."""
    try:
        request = bhttp.decode_request(inner, state.limits)
        _check_inner(state, request, enc)
        started = perf_counter()
        response = await _at_backend(state, partial(state.backend.handle, request))
        state.metrics.backend_seconds.observe(perf_counter() - started)
        # ValueError: the backend's response cannot be encoded (e.g. a bad field name).
        return bhttp.encode_response(response), Result.OK
    except (GatewayError, OHTTPError, BackendError, ValueError) as exc:
        reply = inner_reply(exc)
        return reply.encoded, reply.result


def _check_inner(state: GatewayState, request: bhttp.Request, enc: bytes) -> None:
    # RFC 9458 §6.3, §6.10: no tunnels, no protocol switches, allowlisted targets only.
    if request.method == b"CONNECT":
        raise ForbiddenTarget()
    date: bytes | None = None
    host: bytes | None = None
    for name, value in request.headers:
        if name == b"date":
            date = value
        elif name == b"host":
            host = value
        elif name == b"upgrade":
            raise ForbiddenTarget()
        elif name == b"expect":  # RFC 9458 §5.1: Expect: 100-continue MUST get an error
            raise ExpectNotAllowed()
    authority = request.authority or host or b""  # RFC 9292 §3.4: Host if no authority
    if not state.policy.allows(request.scheme, authority):
        raise ForbiddenTarget()
    # Last, so only requests that reach the backend occupy the replay cache (RFC 9458 §6.5).
    state.replay.check(date, enc)


async def _at_backend(state: GatewayState, call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()`` into the backend under its deadline; its failures become 502/504 only."""
    try:
        return await state.deadlines.run(call())
    except BackendError:
        raise
    except TimeoutError:
        raise BackendTimeout() from None
    except Exception as exc:  # the backend seam: any failure there is a 502, never a 500
        logger.warning("backend_exception", extra={"error": type(exc).__name__})
        raise BackendError() from None


# --- chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08) ------------------------------------------


class StreamAborted(Exception):
    """The chunked response failed after its first byte was handed out.

    The transport must end the connection without ending the HTTP message, so that the
    client sees truncation: the response has no final chunk and never verifies as complete
    (chunked-08 §7.1).
    """

    def __init__(self) -> None:
        super().__init__("response stream aborted")


@dataclass(frozen=True, slots=True)
class _BodyStream:
    """The backend's body still to be sent, and the Binary HTTP framing it goes in."""

    streamed: StreamedResponse
    framer: bhttp.StreamingResponseEncoder


class StreamedAnswer:
    """A ``200 message/ohttp-chunked-res`` answer, produced while it is sent.

    Iterate it and write (and flush) each piece as it comes; the first piece carries the
    inner status and header fields. ``StreamAborted`` from the iteration means: abort the
    connection. Always ``aclose()`` it, also when the client went away: that releases the
    backend and accounts for the request.
    """

    status = 200
    headers = _CHUNKED_RES_HEADERS

    def __init__(
        self,
        state: GatewayState,
        started: float,
        encoder: ChunkedResponseEncoder,
        first: bytes,
        *,
        rest: _BodyStream | None,
        result: Result,
    ) -> None:
        self._state = state
        self._started = started
        self._encoder = encoder
        self._first = first
        self._rest = rest
        self._final_result = result
        self._result: Result | None = None  # None until the stream ended either way
        self._iterator: AsyncGenerator[bytes, None] | None = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is not None or self._closed:
            raise RuntimeError("a streamed answer is iterated once")
        self._iterator = self._pieces()
        return self._iterator

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        rest = self._rest
        if rest is None:  # the whole inner response is in the first piece
            self._result = self._final_result
            yield self._first
            return
        yield self._first
        encoder, framer = self._encoder, rest.framer
        try:
            async for piece in _with_gap_timeout(rest.streamed.body, self._state.deadlines):
                framed = framer.content(piece)
                if framed:  # an empty piece makes no chunk (chunked-08 §6)
                    yield encoder.chunk(framed)
            final = encoder.final(framer.end())
        except TimeoutError:
            self._result = Result.BACKEND_TIMEOUT
            raise StreamAborted() from None
        except Exception as exc:  # the backend seam: anything failing there ends the stream
            logger.warning("backend_stream_failed", extra={"error": type(exc).__name__})
            self._result = Result.BACKEND_ERROR
            raise StreamAborted() from None
        self._result = Result.OK
        yield final

    async def aclose(self) -> None:
        """Release the backend's stream and account for the request (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._iterator is not None:
                await self._iterator.aclose()
            if self._rest is not None:
                await self._rest.streamed.aclose()
        except Exception as exc:  # closing a failed backend stream must not mask the answer
            logger.warning("backend_close_failed", extra={"error": type(exc).__name__})
        finally:
            _finish(self._state, self._started, self._result)


async def _with_gap_timeout(
    body: AsyncIterator[bytes], deadlines: BackendDeadlines
) -> AsyncIterator[bytes]:
    """``body``, with ``backend_timeout`` bounding each wait for the next piece."""
    iterator = aiter(body)
    while True:
        try:
            piece = await deadlines.run(anext(iterator))
        except StopAsyncIteration:
            return
        yield piece


async def _answer_chunked(
    state: GatewayState,
    content_length: int | None,
    chunks: AsyncIterable[bytes],
    started: float,
) -> StreamedAnswer:
    """Decrypt a chunked request, then answer it as a chunked response (chunked-08 §3).

    Errors before the request is complete raise (plain 4xx, as for ``message/ohttp-req``);
    after that every answer is a chunked response, an inner error included.
    """
    accepted = state.config.max_chunk
    decoder = ChunkedRequestDecoder(
        state.keys.ring, limits=ChunkLimits(max_chunk=accepted, max_final_chunk=accepted)
    )
    inner = await _read_chunked_request(state, decoder, content_length, chunks)
    # chunked-08 §7.1: only now, with the final chunk verified, is the request complete.
    encoder = decoder.response_encoder()
    try:
        request = bhttp.decode_request(inner, state.limits)
        _check_inner(state, request, decoder.enc)
        backend_started = perf_counter()
        first, rest = await _backend_head(state, request, encoder)
        state.metrics.backend_seconds.observe(perf_counter() - backend_started)
    except (GatewayError, OHTTPError, BackendError, ValueError) as exc:
        reply = inner_reply(exc)
        first = encoder.header() + encoder.final(reply.encoded)
        return StreamedAnswer(state, started, encoder, first, rest=None, result=reply.result)
    return StreamedAnswer(state, started, encoder, first, rest=rest, result=Result.OK)


async def _read_chunked_request(
    state: GatewayState,
    decoder: ChunkedRequestDecoder,
    content_length: int | None,
    chunks: AsyncIterable[bytes],
) -> bytes:
    """The request's plaintext, once its final chunk verified."""
    limit = state.config.max_body
    plaintext = bytearray()
    size = 0
    crypto_seconds = 0.0
    async for piece in chunks:
        size += len(piece)
        if size > limit:  # enforced while reading when no Content-Length bounds it
            raise BodyTooLarge()
        opened = perf_counter()
        for part in decoder.feed(piece):  # key lookup, then each chunk as it completes
            plaintext += part
        crypto_seconds += perf_counter() - opened
    if size == 0:
        raise EncapsulationError("empty request")
    if content_length is not None and size != content_length:
        raise EncapsulationError("request body truncated")
    opened = perf_counter()
    for part in decoder.close():  # raises unless the final chunk verified
        plaintext += part
    state.metrics.decapsulate_seconds.observe(crypto_seconds + perf_counter() - opened)
    return bytes(plaintext)


async def _backend_head(
    state: GatewayState, request: bhttp.Request, encoder: ChunkedResponseEncoder
) -> tuple[bytes, _BodyStream | None]:
    """The first piece of the chunked response, and the backend stream still to be sent.

    A backend that cannot stream answers in one piece, its response in the final chunk.
    """
    backend = state.backend
    if not isinstance(backend, StreamingBackend):
        response = await _at_backend(state, partial(state.backend.handle, request))
        return encoder.header() + encoder.final(bhttp.encode_response(response)), None
    streamed = await _at_backend(state, partial(backend.stream, request))
    framer = bhttp.StreamingResponseEncoder()  # indeterminate length: the size is not known
    try:
        head = framer.head(bhttp.Response(status=streamed.status, headers=streamed.headers))
    except ValueError:  # a field the backend sent cannot be encoded: a 502, nothing sent
        await streamed.aclose()
        raise
    return encoder.header() + encoder.chunk(head), _BodyStream(streamed, framer)
