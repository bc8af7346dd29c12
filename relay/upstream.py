"""A lean HTTP/1.1 client for the one hop relay -> gateway.

Why not aiohttp.ClientSession: it costs several times the CPU per forwarded request and adds
behaviour a relay must not have (User-Agent, Accept-Encoding, redirects, decompression).
Why not asyncio streams either: a StreamReader/StreamWriter pair plus a timeout context per
read costs more than the whole parse. Each connection is an ``asyncio.Protocol`` that feeds
the response to the sans-IO parser of ``relay.h1`` as bytes arrive and wakes the waiting
coroutine once per segment, so a small answer that arrives in one segment costs one wake-up.
It sends exactly the header lines it is given, streams both bodies, keeps a small keep-alive
pool per gateway and never retries (RFC 9458 §6.5): any failure is reported once.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import cast

from relay.config import GatewayTarget
from relay.errors import GatewayUntrusted, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from relay.h1 import Data, IncompleteResponse, ProtocolError, ResponseHead, ResponseParser

HIGH_WATER = 256 * 1024  # unconsumed body bytes before reading from the gateway pauses
_CRLF = b"\r\n"


class UpstreamConnection(asyncio.Protocol):
    """One connection to the gateway, feeding a :class:`ResponseParser` as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = ResponseParser()
        self._idle = True  # no request outstanding; any byte from the gateway is an error
        self._broken = False
        self.head: ResponseHead | None = None
        self._complete = False  # the parser gave EndOfMessage for the current response
        self._pieces: list[bytes] = []  # body bytes parsed and not yet consumed
        self._queued = 0
        self.error: UpstreamError | None = None  # why the connection failed, once it did
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # loop time by which the current wait must end
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._poller: select.poll | None = None  # the socket, for peer_closed
        self._listener: Callable[[], None] | None = None  # told of progress instead of a waiter

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses, but behave as one)
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # registered once: peer_closed runs before every reuse
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        if self._idle:
            # Bytes nobody asked for: the connection can no longer be trusted for reuse.
            self.fail(UpstreamProtocolError("unexpected data from gateway"))
            return
        if self._broken:
            return
        try:
            events = self._parser.feed(data)
        except ProtocolError as exc:  # the one place parser errors join the relay's tree
            self.fail(UpstreamProtocolError(f"gateway: {exc}"))
            return
        for event in events:
            if type(event) is Data:
                self._pieces.append(event.data)
                self._queued += len(event.data)
            elif type(event) is ResponseHead:
                self.head = event
            else:
                self._complete = True
        if self._parser.extra:
            self._discard_extra()
        if self._queued > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side as well

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        if not self._idle and not self._broken:
            try:
                if self._parser.feed_eof():  # ends a close-delimited body
                    self._complete = True
            except IncompleteResponse as incomplete:
                self.fail(UpstreamError("gateway closed the connection" if incomplete.in_head
                                        else "gateway closed the connection mid-body"))
        self._wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def _discard_extra(self) -> None:
        """Bytes after a complete response: keep that response, never reuse the connection
        (they would be read as the next request's answer)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- waking the consumer

    def fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._broken = True
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._listener is not None:
            self._listener()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _progress(self, timeout: float) -> asyncio.Future[None]:
        """A future done when the parser makes progress or the connection fails; the caller
        awaits it (a future, not a coroutine: one frame less to resume per wake-up).

        The deadline is checked lazily: a timer armed for an earlier wait stays armed and, when
        it fires, either fails the connection with UpstreamTimeout (which wakes the waiter) or
        re-arms for the current deadline. Under steady traffic that is one timer per ``timeout``
        period instead of one per request.
        """
        self._arm(timeout)
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def listen(self, listener: Callable[[], None] | None, timeout: float = 0.0) -> None:
        """Call ``listener`` on each progress of the parser or failure, within ``timeout``
        from now (the same lazy deadline as a waiter's); None stops it."""
        self._listener = listener
        if listener is not None:
            self._arm(timeout)

    def _arm(self, timeout: float) -> None:
        self._deadline = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        if self._listener is None and (waiter is None or waiter.done()):
            return  # nobody waits; the next wait arms a timer again
        if self._loop.time() >= self._deadline:
            self.fail(UpstreamTimeout("gateway read timed out"))
        else:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- used by UpstreamPool and UpstreamResponse

    def expect_response(self) -> None:
        self._idle = False
        self._parser.start()
        self.head = None
        self._complete = False

    def start(self, data: bytes) -> None:
        """Send a request (head and maybe body) and expect a response."""
        assert self.transport is not None
        self.expect_response()
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.closed or self.error is not None or self.transport is None:
            raise UpstreamError("gateway connection failed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed or self.error is not None:
            raise UpstreamError("gateway connection failed")
        if not self._write_paused:
            return
        waiter = self._drain_waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None
        if self.closed:
            raise UpstreamError("gateway connection failed")

    async def read_head(self, timeout: float) -> ResponseHead:
        while self.head is None:
            if self.error is not None:
                raise self.error
            await self._progress(timeout)
        return self.head

    def take(self) -> bytes:
        """Body bytes parsed so far (b"" if none), consumed."""
        pieces = self._pieces
        if not pieces:
            return b""
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self._queued = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    @property
    def body_done(self) -> bool:
        return self._complete and not self._idle and not self._broken

    async def next_piece(self, timeout: float) -> bytes:
        """The next body bytes; b"" at the end of the body."""
        while True:
            data = self.take()
            if data:
                return data
            if self.body_done:
                return b""
            if self.error is not None:
                raise self.error
            await self._progress(timeout)

    def reusable(self) -> bool:
        return self.body_done and not self.closed and self.error is None

    def peer_closed(self) -> bool:
        """Whether the gateway has closed (or written to) this idle connection already.

        The event loop learns of a FIN only on its next turn; a zero-timeout poll of the socket
        sees it now, before a request is written to a connection the gateway already closed
        (issue 13, finding 6). An idle connection is never readable unless the peer closed it
        or sent bytes nobody asked for: either way it is not reused.
        """
        poller = self._poller
        return poller is None or bool(poller.poll(0))  # POLLNVAL, if closed, counts as well

    def reset(self) -> None:
        self._idle = True
        self._listener = None
        self.head = None

    def close(self) -> None:
        self.closed = True
        self._disarm()
        if not self.body_done:
            self._broken = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """A response whose head has arrived; read its body with :meth:`read` or :meth:`chunks`."""

    def __init__(self, pool: UpstreamPool, conn: UpstreamConnection, head: ResponseHead,
                 sender: asyncio.Task[None] | None) -> None:
        self._pool = pool
        self._conn: UpstreamConnection | None = conn
        self._sender = sender
        self.head = head

    @property
    def status(self) -> int:
        return self.head.status

    def read_complete(self, limit: int) -> bytes | None:
        """The whole body if it has already arrived (the common case: it came with the head),
        else None; more than ``limit`` bytes is an error."""
        conn = self._conn
        if conn is None or not conn.body_done:
            return None
        body = conn.take()
        if len(body) > limit:
            self.abort()
            raise UpstreamProtocolError("gateway body too large")
        self._finish()
        return body

    async def read(self, limit: int) -> bytes:
        """The whole body, for small answers; more than ``limit`` bytes is an error."""
        body = self.read_complete(limit)
        if body is not None:
            return body
        conn = self._conn
        assert conn is not None
        pieces = []
        size = 0
        while piece := await self._next(conn):
            size += len(piece)
            if size > limit:
                self.abort()
                raise UpstreamProtocolError("gateway body too large")
            pieces.append(piece)
        self._finish()
        return b"".join(pieces)

    def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (an idle gap longer than the read timeout fails)."""
        conn = self._conn
        assert conn is not None
        return _BodyPieces(self, conn)

    async def _next(self, conn: UpstreamConnection) -> bytes:
        try:
            return await conn.next_piece(self._pool.read_timeout)
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        sender = self._sender
        sent_ok = sender is None or (
            sender.done() and not sender.cancelled() and sender.exception() is None
        )
        if sent_ok:
            self._pool.release(conn, self.head.keep_alive)
        else:
            self.abort()
            conn.close()

    def abort(self) -> None:
        """Drop the connection (never reused) and stop sending the request body."""
        if self._sender is not None:
            self._sender.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _BodyPieces:
    # UpstreamResponse.chunks: a class, as mypyc has no async generators.

    def __init__(self, response: UpstreamResponse, conn: UpstreamConnection) -> None:
        self._response, self._conn = response, conn
        self._done = False

    def __aiter__(self) -> _BodyPieces:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        self._done = True  # until a piece comes: an end or an error is final, as a generator's
        piece = await self._response._next(self._conn)
        if not piece:
            self._response._finish()
            raise StopAsyncIteration
        self._done = False
        return piece


class UpstreamPool:
    """Keep-alive connections to one gateway; a failed request is never retried."""

    def __init__(self, gateway: GatewayTarget, *, ssl_context: ssl.SSLContext | None,
                 connect_timeout: float, read_timeout: float, max_idle: int,
                 idle_timeout: float) -> None:
        self.gateway = gateway
        self.read_timeout = read_timeout
        self._ssl = ssl_context if gateway.tls else None
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._idle_timeout = idle_timeout
        self._idle: list[UpstreamConnection] = []
        self._prefixes: dict[str, bytes] = {}

    def _prefix(self, method: str) -> bytes:
        """Request line and Host, built once per method."""
        prefix = self._prefixes.get(method)
        if prefix is None:
            gateway = self.gateway
            text = f"{method} {gateway.target} HTTP/1.1\r\nhost: {gateway.host_header}\r\n"
            prefix = self._prefixes[method] = text.encode("latin-1")
        return prefix

    def take_idle(self) -> UpstreamConnection | None:
        """A pooled connection fit for reuse, or None."""
        # Reuse only a connection that is still open and idle for less than the idle timeout
        # (well below common server keep-alive timeouts): a reused connection the gateway already
        # closed would fail the request, and we do not retry.
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            fresh = not conn.closed and now - conn.idle_since < self._idle_timeout
            if fresh and not conn.peer_closed():
                return conn
            conn.close()
        return None

    async def _connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(loop), self.gateway.host, self.gateway.port,
                    ssl=self._ssl, server_hostname=self.gateway.host if self._ssl else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("gateway connect timed out") from None
        except ssl.SSLCertVerificationError:
            raise GatewayUntrusted("gateway certificate not trusted") from None
        except (OSError, ssl.SSLError):
            raise UpstreamError("gateway unreachable") from None
        return conn

    def release(self, conn: UpstreamConnection, keep_alive: bool) -> None:
        """Pool ``conn`` after its response ended, or close it: without ``keep_alive`` (the
        response's), when it is not fit for reuse, or when the pool is full."""
        if not keep_alive or len(self._idle) >= self._max_idle or not conn.reusable():
            conn.close()
            return
        conn.reset()
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def request(self, method: str, header_lines: bytes,
                      body: AsyncIterable[bytes] | bytes, *, chunked: bool) -> UpstreamResponse:
        """Send ``method`` to the gateway URL with exactly ``header_lines`` plus Host and framing.

        ``header_lines`` are complete ``name: value\\r\\n`` lines. ``body`` is bytes (sent with
        Content-Length, in the same write as the head) or an async iterable (sent with chunked
        transfer coding when ``chunked``, otherwise the caller put Content-Length in the lines).
        The request body is sent concurrently with waiting for the response head, so a gateway
        that answers incrementally is seen at once.
        """
        conn = self.take_idle() or await self._connect()
        sender: asyncio.Task[None] | None = None
        if isinstance(body, bytes):
            self.send(conn, method, header_lines, body)
        else:
            head = self._prefix(method) + header_lines
            if chunked:
                head += b"transfer-encoding: chunked\r\n"
            conn.start(head + _CRLF)
            sender = asyncio.ensure_future(_send_body(conn, body, chunked))
            sender.add_done_callback(lambda task: _sender_done(task, conn))
        try:
            response_head = await conn.read_head(self.read_timeout)
        except BaseException as exc:
            if sender is not None:
                sender.cancel()
            conn.close()
            if isinstance(exc, UpstreamTimeout):
                raise UpstreamTimeout("gateway response timed out") from None
            if sender is not None and sender.done() and not sender.cancelled():
                error = sender.exception()
                if error is not None and not isinstance(error, UpstreamError):
                    raise error from None  # the client's body failed first (ClientBodyError)
            raise
        return UpstreamResponse(self, conn, response_head, sender)

    def send(self, conn: UpstreamConnection, method: str, header_lines: bytes,
             body: bytes) -> None:
        """Send a request with a whole ``body`` on ``conn``, head and body in one write (the
        common request costs one syscall)."""
        head = self._prefix(method) + header_lines
        if method != "GET":
            head += b"content-length: %d\r\n" % len(body)
        conn.start(head + _CRLF + body)


def _sender_done(task: asyncio.Task[None], conn: UpstreamConnection) -> None:
    """A body sender that failed before the response head arrived fails the request."""
    if task.cancelled() or task.exception() is None or conn.head is not None:
        return
    conn.fail(UpstreamError("request body not sent"))


async def _send_body(conn: UpstreamConnection, body: AsyncIterable[bytes], chunked: bool) -> None:
    async for piece in body:
        if not piece:
            continue
        if chunked:
            conn.write(b"%x\r\n" % len(piece) + piece + _CRLF)
        else:
            conn.write(piece)
        await conn.drain()
    if chunked:
        conn.write(b"0\r\n\r\n")
    await conn.drain()
