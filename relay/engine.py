"""The relay's routes on the serving engine (``ohttp.aio.engine``), for ``ohttp relay``.

The same routes and answers as the aiohttp application of ``relay.app``, whose state,
lifecycle, readiness checks and route table it uses: ``engine_handler(app)`` after the app
started. The request handling is ``relay.routes``' and ``relay.forward``'s, shared with the
aiohttp transport through ``relay.exchange.ClientRequest``.

``relay_lane(app)`` is the engine's lane for the common forward (``ohttp.aio.engine``'s
``LaneRequest``): a small whole POST that passes every check, on a pooled connection to its
gateway, answered by callbacks when the gateway's small answer arrives. It takes nothing the
handler would answer differently: whatever it declines (a refusal, the in-flight cap, no
pooled connection) the handler answers, and an answer it cannot give by callbacks (a streamed
or large one, a 422 that may refresh the keys) it hands over to the handler's own code. With
a rate limit, whose check is a coroutine (maybe a store's I/O), the lane runs each request it
would see in a task of its own (``LaneRequest.spawn``): the limit counts it once and first, as
the handler's ``forward`` does, and what the lane would decline after that goes to the
handler's code with the count kept (``forward(counted=True)``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from aiohttp import web

from ohttp.aio.engine import Exchange, Handler, Lane, LaneRequest
from relay.app import ROUTES
from relay.errors import RelayError
from relay.forward import (
    SMALL_BODY,
    UPSTREAM_BYTES,
    ClientHead,
    InFlightSlot,
    admit,
    answer_response,
    count_small,
    small_body,
    upstream_headers,
)
from relay.ratelimit import RateLimiter
from relay.routes import RouteHandler, answer, forward_route, refusal
from relay.state import STATE_KEY, RelayState
from relay.upstream import UpstreamConnection, UpstreamResponse

__all__ = ["engine_handler", "relay_lane"]


def engine_handler(app: web.Application) -> Handler:
    """The engine handler for the relay ``app`` (made by ``relay.app.create_app``)."""
    state = app[STATE_KEY]
    table = app[ROUTES]

    def handle(exchange: Exchange) -> Coroutine[Any, Any, None]:
        head = exchange.head
        return _answer_by(table.find(head.method, head.path), exchange, state)

    return handle


async def _answer_by(route: RouteHandler, exchange: Exchange, state: RelayState) -> None:
    # A route's answer to the exchange, as every route's (relay.routes.answer).
    request = _EngineRequest(exchange, state.config.write_timeout)
    reply = await answer(route, request, state, exchange.head.target)
    if reply is None:  # streamed through the request
        return
    if reply.close:
        exchange.close()  # the engine sends the field and ends the connection after it
    exchange.respond(reply.status, reply.headers, reply.body)


def relay_lane(app: web.Application) -> Lane:
    """The engine lane for the relay ``app``'s common forward (see the module's text)."""
    state = app[STATE_KEY]
    gateways = app[ROUTES].forwards()

    def lane(request: LaneRequest) -> bool:
        head = request.head
        name = gateways.get(head.path)
        # The handler's checks before its forward, as they would pass: origin form without a
        # query (routes' answer; a Content-Length body has no transfer coding), a POST.
        if (name is None or head.target != head.path or head.method != "POST"
                or head.content_length is None or head.content_length > SMALL_BODY):
            return False
        if state.limiter is not None:
            request.spawn(_limited(request, state, state.limiter, name))
            return True
        return _take(request, state, name) is not None

    return lane


def _take(request: LaneRequest, state: RelayState, name: str) -> _LaneForward | None:
    # The forward's checks, as they would pass (admit's, RFC 9458 §5; the in-flight cap), and
    # a pooled connection. None declines: the handler refuses it, with the one mapping, or
    # connects.
    slot = InFlightSlot(state)
    try:
        media_type = admit(request.head.headers.getall, request.head.content_length, True,
                           state.config)
        slot.take()
    except RelayError:
        return None
    try:
        conn = state.pools[name].take_idle()
        if conn is None:
            slot.release()
            return None
        forwarding = _LaneForward(request, state, name, conn, slot)
    except BaseException:  # a bug: the engine answers it (a 500), the slot comes back first
        slot.release()
        raise
    forwarding.send(media_type)
    return forwarding


async def _limited(request: LaneRequest, state: RelayState, limiter: RateLimiter,
                   name: str) -> None:
    peer = request.peer
    try:
        await limiter.admit(None if peer is None else peer[0])  # first, as forward's
    except RelayError as error:
        reply = refusal(error, state)
        request.respond(reply.status, reply.headers, reply.body, close=reply.close)
        return
    forwarding = _take(request, state, name)
    if forwarding is None:
        route = forward_route(name, counted=True)  # counted: not again
        request.hand_over(lambda exchange: _answer_by(route, exchange, state))
        return
    await forwarding.until_answered()  # by its callbacks, or handed over


class _LaneForward:
    """One forward on the lane: the request sent on ``conn``, answered on its progress."""

    __slots__ = ("_answered", "_conn", "_name", "_pool", "_request", "_settled", "_slot",
                 "_started", "_state")

    def __init__(self, request: LaneRequest, state: RelayState, name: str,
                 conn: UpstreamConnection, slot: InFlightSlot) -> None:
        self._request, self._state, self._name = request, state, name
        self._pool, self._conn, self._slot = state.pools[name], conn, slot
        self._started = 0.0
        self._answered: asyncio.Future[None] | None = None
        self._settled = False  # answered or handed over (by _failed, maybe before any wait)

    def until_answered(self) -> asyncio.Future[None]:
        """Done once the request is answered or handed over (for a spawned lane's task)."""
        answered = self._answered = asyncio.get_running_loop().create_future()
        if self._settled:
            answered.set_result(None)
        return answered

    def _settle(self) -> None:
        # First, before the answer: a task waiting here resumes after this callback anyway.
        self._settled = True
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)

    def send(self, media_type: str) -> None:
        state, request = self._state, self._request
        try:
            state.metrics.add_bytes(UPSTREAM_BYTES, len(request.body))
            self._started = time.monotonic()
            lines = upstream_headers(request.head.headers.getall, media_type, state.config)
            self._pool.send(self._conn, "POST", lines, request.body)
            self._conn.listen(self._progress, self._pool.read_timeout)
        except Exception as error:  # a bug: see _failed
            self._failed(error)

    def _progress(self) -> None:
        try:
            self._advance()
        except Exception as error:  # a bug: see _failed
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        # A bug, never an input (a gateway's or a client's fault is a RelayError): answered as
        # a handler's bug is, and what the forward holds let go of. Uncaught, it would leave
        # the client unanswered and the slot and the connection taken.
        self._slot.release()  # first: it cannot fail
        self._settle()
        self._conn.listen(None)
        self._conn.close()
        self._request.fail(error)

    def _advance(self) -> None:
        conn = self._conn
        head = conn.head
        if conn.error is None and (head is None or (not conn.body_done and small_body(head))):
            conn.listen(self._progress, self._pool.read_timeout)  # each wait, its own deadline
            return  # more to come: a small body is answered whole
        conn.listen(None)
        try:
            if conn.error is not None:
                raise conn.error
            assert head is not None
            self._state.metrics.observe_latency(time.monotonic() - self._started)
            status, headers = ClientHead.of(head)  # may refuse
        except RelayError as error:
            conn.close()
            reply = refusal(error, self._state)
            self._answer(reply.status, reply.headers, reply.body, close=reply.close)
            return
        if status == 422 or not small_body(head):  # streamed, large, or may refresh the keys
            response = UpstreamResponse(self._pool, conn, head, None)
            self._settle()
            self._request.hand_over(lambda exchange: self._finish(exchange, response))
            return
        body = conn.take()  # the whole body: a small one was waited for
        count_small(self._state, status, body)  # as forward's small answer
        self._pool.release(conn, head.keep_alive)
        self._answer(status, headers, body)

    def _answer(self, status: int, headers: Sequence[tuple[str, str]], body: bytes, *,
                close: bool = False) -> None:
        self._slot.release()
        self._settle()
        self._request.respond(status, headers, body, close=close)

    async def _finish(self, exchange: Exchange, response: UpstreamResponse) -> None:
        state, name = self._state, self._name
        try:
            await _answer_by(lambda request, _: answer_response(request, state, name, response),
                             exchange, state)
        finally:  # whatever answered it, or failed to: nothing held outlives the answer
            self._slot.release()
            response.abort()  # a no-op once the body was read whole and the connection pooled


class _EngineRequest:
    """An engine exchange as the relay's ``ClientRequest``."""

    __slots__ = ("_exchange", "_pieces", "_write_timeout")

    def __init__(self, exchange: Exchange, write_timeout: float) -> None:
        self._exchange = exchange
        self._write_timeout = write_timeout
        self._pieces: AsyncIterator[bytes] | None = None

    @property
    def path(self) -> str:
        return self._exchange.head.path

    @property
    def content_length(self) -> int | None:
        return self._exchange.head.content_length  # None for a chunked body

    @property
    def body_exists(self) -> bool:
        head = self._exchange.head
        return head.chunked or bool(head.content_length)

    @property
    def peer(self) -> str | None:
        peer = self._exchange.peer
        return None if peer is None else peer[0]

    def fields(self, name: str) -> list[str]:
        return self._exchange.head.headers.getall(name)

    def read_nowait(self) -> bytes:
        return self._exchange.body.read_nowait(sys.maxsize)

    async def readany(self) -> bytes:
        body = self._exchange.body
        if self._pieces is None:
            self._pieces = body.iter_any()
        piece = await anext(self._pieces, b"")
        if not piece and body.truncated:  # the client half-closed or broke the framing
            raise ConnectionResetError("request body truncated")
        return piece

    async def start(self, status: int, headers: Sequence[tuple[str, str]],
                    length: int | None) -> None:
        self._exchange.start(status, headers, length)

    async def write(self, piece: bytes) -> None:
        await self._exchange.write(piece, self._write_timeout)

    async def end(self) -> None:
        self._exchange.end()

    def truncate(self) -> None:
        self._exchange.cut()
