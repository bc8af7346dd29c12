"""The engine's connection: HTTP/1.1 (RFC 9112) parsed by llhttp, through httptools.

llhttp is strict by default: it refuses Content-Length with Transfer-Encoding, a repeated or
signed Content-Length, a request Transfer-Encoding that does not end in chunked, obs-fold,
bare LF and whitespace before a colon, so none of the request-smuggling ambiguities of
RFC 9112 §6.3 and §11.2 reach a handler. The engine adds the limits llhttp does not have
(request-line, field-line and field-count bounds), the connection cap, the request-head and
keep-alive deadlines, and answers one request at a time per connection, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

import httptools

from ohttp.aio.engine._body import Body
from ohttp.aio.engine._deadline import ConnectionDeadline
from ohttp.aio.engine._exchange import Exchange, Handler, log_client_gone
from ohttp.aio.engine._head import Head, parsed_head
from ohttp.aio.engine._lane import LANE_MAX_BODY, LaneRequest
from ohttp.aio.engine._wire import OVER_CAPACITY, fixed_page
from ohttp.aio.logs import REQUEST_ERROR_EVENT

if TYPE_CHECKING:
    from ohttp.aio.engine._server import EngineServer

__all__: list[str] = []  # the engine's connection, made by EngineServer

log = logging.getLogger("ohttp.serving")

_LINGER_SECONDS = 10.0  # seconds to read and drop the unread rest of a body after its answer


class _After(enum.Enum):
    NEXT = enum.auto()  # the connection goes on with the next request
    LINGER = enum.auto()  # drop the rest of the body for a while, then end
    END = enum.auto()


_NEXT, _LINGER, _END = _After.NEXT, _After.LINGER, _After.END


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Connection(asyncio.Protocol):
    """One client connection: parser callbacks queue exchanges, one task answers them."""

    def __init__(self, server: EngineServer) -> None:
        self._server = server
        self._limits = server.limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Exchange] = deque()
        self._receiving: Exchange | None = None  # the exchange whose body is arriving
        self._wake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._admitted = False
        self._lost = False
        self._parsing = True  # False after an error, an upgrade or once closing
        self._pending_error: int | None = None  # to send once the answers in progress end
        self._answering: Exchange | None = None  # the exchange whose handler runs
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._read_paused = 0  # bit 1: a body's flow control, bit 2: pipelined requests queued
        # head under construction, reset as each message ends (no on_message_begin: a call
        # less per request)
        self._url: list[bytes] = []
        self._url_size = 0
        self._fields: dict[str, list[str]] | None = {}  # None once the head is complete
        self._field_count = 0  # field lines of this message, trailer fields included
        self._deadline: ConnectionDeadline | None = None  # head and keep-alive, once admitted
        # the lane: a head whose body is arriving in this read, then the request it answers
        self._lane_head: Head | None = None
        self._lane_pieces: list[bytes] = []
        self._laned: LaneRequest | None = None
        self._handed: dict[Exchange, Handler] = {}  # exchanges a lane handed over, and to whom

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._server.admit(self):
            # Over the cap: a fixed answer, then close (no request is read).
            self._transport.write(OVER_CAPACITY)
            self._transport.close()
            self._parsing = False
            return
        self._admitted = True
        limits = self._limits
        self._deadline = ConnectionDeadline(
            transport, limits.header_timeout, limits.keepalive_timeout
        )

    @property
    def busy(self) -> bool:
        """Whether a complete head is queued or being answered."""
        return self._deadline is not None and self._deadline.busy

    def data_received(self, data: bytes) -> None:
        if not self._parsing:
            return
        if self._deadline is not None:
            self._deadline.bytes_arrived()
        try:
            self._parser.feed_data(data)
            if self._lane_head is not None:  # its body did not arrive in this read
                self._unlane()
        except httptools.HttpParserUpgrade:
            # An upgrade or CONNECT: its head (and body) were taken; the rest is not HTTP/1.1
            # for us, so nothing more is read and the connection ends after the answer.
            self._parsing = False
            self._unlane()
            for exchange in (self._receiving, *self._queue):
                if exchange is not None:
                    exchange.close()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.status, "RequestOverLimit")
            else:
                self._refuse(400, type(exc).__name__)
        except httptools.HttpParserInvalidMethodError as exc:
            self._refuse(self._method_refusal(data), type(exc).__name__)
        except httptools.HttpParserError as exc:
            self._refuse(400, type(exc).__name__)

    def eof_received(self) -> bool | None:
        self._parsing = False
        if self._receiving is not None:  # the client ended early: the body reads as truncated
            self._receiving.close()
            self._receiving.body.end(truncated=True)
            self._receiving = None
        if not self.busy and self._transport is not None:
            self._transport.close()
        return True  # keep the socket open to finish writing an answer in progress

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._parsing = False
        if self._deadline is not None:
            self._deadline.cancel()
        gone = ConnectionResetError("connection lost")
        for exchange in (self._receiving, *self._queue):
            if exchange is not None:
                exchange.body.fail(gone)
        self._set_wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(gone)
        if self._admitted:
            self._server.release(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- parser callbacks (httptools)

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_size += len(url)
        if self._url_size > self._limits.max_request_line:
            raise _Refused(414)  # RFC 9112 §3: a request-target longer than we parse

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self._limits
        if len(name) + len(value) > limits.max_field_line or self._field_count >= limits.max_fields:
            raise _Refused(431)  # RFC 6585 §5
        self._field_count += 1
        fields = self._fields
        if fields is not None:  # after the head, trailer fields: counted, never kept
            key = name.decode("latin-1").lower()
            values = fields.get(key)
            if values is None:
                fields[key] = [value.decode("latin-1")]
            else:
                values.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        # RFC 9110 §6.5.1: trailer fields must not be merged into the header section, so the
        # head's fields are closed here (llhttp reports trailer fields through on_header too).
        fields = self._fields or {}
        parser = self._parser
        head = parsed_head(self._url, fields, parser.get_method(), parser.get_http_version())
        self._url, self._url_size, self._fields = [], 0, None
        expect = fields.get("expect")  # (the index, not the Headers: one call less)
        if expect is not None and expect[0].lower() != "100-continue":
            raise _Refused(417)  # RFC 9110 §10.1.1: an expectation we cannot meet
        if self._deadline is not None:
            self._deadline.request_started()
        if self._lane_fits(head, fields):
            self._lane_head, self._lane_pieces = head, []
            return
        self._receiving = self._exchange(head, self._parser.should_keep_alive())
        self._enqueue(self._receiving)

    def _exchange(self, head: Head, keep_alive: bool) -> Exchange:
        exchange = Exchange(head, Body(self._pause_for_body, self._resume_for_body), self,
                            keep_alive=keep_alive)
        if self._server.stopping:
            exchange.close()
        return exchange

    def _enqueue(self, exchange: Exchange, *, first: bool = False) -> None:
        if first:
            self._queue.appendleft(exchange)
        else:
            self._queue.append(exchange)
        if len(self._queue) > 1 or self._laned is not None:
            self._pause_reading(2)  # pipelined: read no further until the earlier are answered
        if self._laned is None:  # else the lane's answer comes first, the task after it
            self._start_task()

    def _start_task(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._serve())
        else:
            self._set_wake()

    def on_body(self, data: bytes) -> None:
        if self._lane_head is not None:
            self._lane_pieces.append(data)
        elif self._receiving is not None:
            self._receiving.body.feed(data)

    def on_message_complete(self) -> None:
        self._fields, self._field_count = {}, 0  # the next message's
        if self._lane_head is not None:
            self._offer_lane()
        elif self._receiving is not None:
            self._receiving.body.end()
            self._receiving = None

    # -- the lane (``ohttp.aio.engine._lane``)

    def _lane_fits(self, head: Head, fields: dict[str, list[str]]) -> bool:
        # A request the lane may see: nothing else in progress here, a small sized body, no
        # Expect or Upgrade (looked up in the head's ``fields`` index: a call less).
        length = head.content_length
        return (
            self._server.lane is not None and not self._queue and self._laned is None
            and "expect" not in fields and "upgrade" not in fields
            and (self._task is None or self._wake is not None)  # the task waits for work
            and length is not None and 0 < length <= LANE_MAX_BODY
            and not self._server.stopping and self._pending_error is None
        )

    def _offer_lane(self) -> None:
        head, self._lane_head = self._lane_head, None
        assert head is not None and self._server.lane is not None
        pieces = self._lane_pieces
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        keep_alive = self._parser.should_keep_alive()
        request = self._laned = LaneRequest(head, body, self, keep_alive=keep_alive)
        try:
            taken = self._server.lane(request)
        except Exception as exc:  # a bug in the lane: as one in a handler
            self.lane_fail(request, exc)
            return
        if not taken and self._laned is request and not request.spawned:  # declined
            self._laned = None
            self._enqueue(self._whole_exchange(request))

    def _unlane(self) -> None:
        # A lane head whose body is still arriving goes the usual way.
        head, self._lane_head = self._lane_head, None
        if head is None:
            return
        self._receiving = self._exchange(head, self._parser.should_keep_alive())
        for piece in self._lane_pieces:
            self._receiving.body.feed(piece)
        self._enqueue(self._receiving)

    def lane_respond(self, request: LaneRequest, data: bytes) -> None:
        if self._laned is not request:
            raise RuntimeError("the lane request was answered already")
        self._laned = None
        self.send(data)
        if request.closing or self._lost:
            self._close_transport()
            return
        self._request_ended()
        if self._queue:
            self._start_task()
        elif self._pending_error is not None:
            self.send(fixed_page(self._pending_error))
            self._close_transport()
        elif not self._parsing and self._receiving is None:  # the client ended, or a shutdown
            self._close_transport()

    def lane_fail(self, request: LaneRequest, error: Exception) -> None:
        log.error("internal_error", extra={"error": type(error).__name__})
        if self._laned is request:
            self._lane_failed()

    def _lane_failed(self) -> None:
        # As a handler's bug: the fixed 500, and the connection ends (so the task answers
        # nothing queued behind the request: _serve).
        self._laned = None
        self.send(fixed_page(500))
        self._close_transport()

    def lane_spawn(self, request: LaneRequest, answer: Coroutine[Any, Any, None]) -> None:
        if self._laned is not request:
            answer.close()
            raise RuntimeError("the lane request was answered already")
        task = self._loop.create_task(self._lane_answer(request, answer))
        tasks = self._server.lane_tasks  # the server's: they may outlive the connection
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _lane_answer(self, request: LaneRequest, answer: Coroutine[Any, Any, None]) -> None:
        try:
            await answer
        except Exception as exc:  # a bug in the lane's answer: as one in a handler
            self.lane_fail(request, exc)
            return
        if self._laned is request:  # it ended without an answer
            self._lane_failed()

    def lane_hand_over(self, request: LaneRequest, handler: Handler) -> None:
        if self._laned is not request:
            raise RuntimeError("the lane request was answered already")
        self._laned = None
        exchange = self._whole_exchange(request)
        self._handed[exchange] = handler
        self._enqueue(exchange, first=True)

    def _whole_exchange(self, request: LaneRequest) -> Exchange:
        # The lane's request as the handler's: its body complete, its close kept.
        exchange = self._exchange(request.head, request.keep_alive)
        if request.closing:
            exchange.close()
        exchange.body.feed(request.body)
        exchange.body.end()
        return exchange

    # -- answering, one exchange at a time

    async def _serve(self) -> None:
        handler = self._server.handler
        while True:
            while not self._queue:
                if self._lost or (not self._parsing and self._receiving is None
                                  and self._laned is None):
                    # Nothing more is read (an upgrade, the client's end, a shutdown): the
                    # connection ends with the last answer instead of at the idle deadline.
                    self._close_transport()
                    return
                self._wake = self._loop.create_future()
                await self._wake
                self._wake = None
            if self.gone:  # closed (the client left, a lane's bug): nobody to answer
                await self._release_handed()
                return
            exchange = self._queue.popleft()
            if len(self._queue) <= 1:
                self._resume_reading(2)
            if exchange.head.headers.get("expect") is not None and not exchange.body.complete:
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")  # RFC 9110 §10.1.1
            self._answering = exchange
            try:
                # awaited here, not in a helper: a coroutine less
                await (self._handed.pop(exchange, None) or handler)(exchange)
            except ConnectionError as exc:  # the client went away
                log_client_gone(exc)
                self.abort()
                return
            except Exception as exc:  # a bug in a handler: a fixed 500, the type logged only
                log.error("internal_error", extra={"error": type(exc).__name__})
                if not exchange.started:
                    self.send(fixed_page(500))
                self._close_transport()
                return
            finally:
                self._answering = None
            after = self._answered(exchange)
            if after is not _NEXT:
                if after is _LINGER:
                    await self._linger(exchange)
                self._close_transport()
                return

    async def _release_handed(self) -> None:
        # A request a lane handed over holds what the lane took for it (the relay's in-flight
        # slot, a gateway connection): its handler still runs, to let go of that, though its
        # answer goes nowhere.
        while self._queue:
            exchange = self._queue.popleft()
            handler = self._handed.pop(exchange, None)
            if handler is None:
                continue
            try:
                await handler(exchange)
            except ConnectionError:
                pass  # its answer could not go out: expected, the client has gone
            except Exception as exc:  # a bug in a handler, logged as in _serve
                log.error("internal_error", extra={"error": type(exc).__name__})

    def _answered(self, exchange: Exchange) -> _After:
        """What follows the handler's return: the next request, lingering or the end."""
        if not exchange.ended:
            if exchange.started:
                self.abort()
                return _END
            self.send(fixed_page(500))
            exchange.close()
        self._request_ended()
        if not exchange.body.complete and self._parsing:
            return _LINGER
        if exchange.closing or self._lost or not exchange.body.complete:
            return _END
        if self._pending_error is not None and not self._queue:
            self.send(fixed_page(self._pending_error))
            return _END
        return _NEXT

    async def _linger(self, exchange: Exchange) -> None:
        # Answered before its body ended (a 413, a 401): read the rest and drop it for a
        # while, so the client finishes sending and reads the answer instead of a reset; the
        # connection ends afterwards either way.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self._limits.header_timeout, _LINGER_SECONDS)):
                await exchange.body.discard()

    def _request_ended(self) -> None:
        if self._deadline is not None:
            self._deadline.request_ended(idle=not self._queue)

    # -- what an exchange uses (its _Link)

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    @property
    def paused(self) -> bool:
        return self._write_paused

    @property
    def gone(self) -> bool:
        return self._lost or self._transport is None or self._transport.is_closing()

    async def drained(self) -> None:
        if not self._write_paused:
            return
        if self._lost:
            raise ConnectionResetError("connection lost")
        self._drain = self._loop.create_future()
        await self._drain

    def abort(self) -> None:
        self._parsing = False
        if self._transport is not None:
            self._transport.abort()

    def kill(self) -> asyncio.Task[None] | None:
        """Shutdown past its timeout: drop the connection and cancel the answer in progress
        (returned, to wait for)."""
        self.abort()
        task = self._task
        if task is None or task.done():
            return None
        task.cancel()
        return task

    def close_after_answer(self) -> None:
        self._parsing = False

    @property
    def peer(self) -> tuple[str, int] | None:
        address = None if self._transport is None else self._transport.get_extra_info("peername")
        return None if address is None else (str(address[0]), int(address[1]))

    def stop(self) -> None:
        """Shutdown: an idle connection ends now, a busy one after its answer."""
        if self.busy:
            if self._answering is not None:  # its answer says so and the connection ends
                self._answering.close()
            if self._laned is not None:
                self._laned.closing = True
            for exchange in self._queue:
                exchange.close()
            if self._receiving is not None:
                self._receiving.close()
            self._parsing = False
        else:
            self._close_transport()

    # -- errors, flow control, deadlines

    def _refuse(self, status: int, error: str) -> None:
        """A request that cannot be parsed or exceeds a limit: a fixed page, then close."""
        self._unlane()
        # Logged as the aiohttp shell's parse errors are: the event and a class name, never
        # the bytes that failed nor the peer.
        log.info(REQUEST_ERROR_EVENT, extra={"error": error, "code": status})
        self._parsing = False
        receiving, self._receiving = self._receiving, None
        if receiving is not None:
            if receiving not in self._queue:
                # Its handler runs: the body ends here and reads as truncated (a 400 from the
                # handler), and the connection ends after that answer.
                receiving.close()
                receiving.body.end(truncated=True)
                return
            self._queue.remove(receiving)  # never started: the fixed page answers it
        if self._answering is not None or self._queue or self._laned is not None:
            self._pending_error = status  # after the answers to earlier requests, in order
            return
        self.send(fixed_page(status))
        self._close_transport()

    def _method_refusal(self, data: bytes) -> int:
        # RFC 9110 §9.1, §15.6.2: a method we do not know (llhttp knows the registered ones)
        # gets 501; bytes that are no method at all (TLS to a plain port) get 400. The
        # refused request starts this piece unless an earlier one in it is queued.
        fresh = not self._queue and self._receiving is None
        return 501 if fresh and _METHOD_TOKEN.match(data.lstrip(b"\r\n")) else 400

    def _close_transport(self) -> None:
        self._parsing = False
        if self._transport is not None:
            self._transport.close()  # what is buffered is sent first

    def _set_wake(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _pause_for_body(self) -> None:
        self._pause_reading(1)

    def _resume_for_body(self) -> None:
        self._resume_reading(1)

    def _pause_reading(self, reason: int) -> None:
        if not self._read_paused and self._transport is not None and not self._lost:
            self._transport.pause_reading()
        self._read_paused |= reason

    def _resume_reading(self, reason: int) -> None:
        if not self._read_paused & reason:
            return
        self._read_paused &= ~reason
        if not self._read_paused and self._transport is not None and not self._lost:
            self._transport.resume_reading()


# A method (RFC 9110 §9.1: a token), then the space before the request target.
_METHOD_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ ")
