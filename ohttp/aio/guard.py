"""The connection guard: a cap on open connections and a deadline for each request head.

aiohttp has neither (a client trickling a head would hold a connection forever: slowloris), so
the guard wraps aiohttp's per-connection protocol. That needs two of aiohttp's private classes,
``aiohttp.web_protocol.RequestHandler`` and ``aiohttp.web_server.Server``: this module is the
only place in the project that imports them. Checked against aiohttp 3.9 to 3.14 (3.14.5 in CI);
if a release changes them, this is the module to adapt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from ohttp.aio.engine import OVER_CAPACITY, ConnectionDeadline, WriteStalled, log_client_gone

__all__ = [
    "ConnectionTracker",
    "WriteStalled",
    "client_gone",
    "fixed_error_pages",
    "send_and_close",
    "write_within",
]

class _FixedErrorPage(web.Response):
    """An error page without the ``Server`` field aiohttp adds (it names aiohttp and Python;
    ``on_response_prepare`` never runs for a request that failed to parse)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Server", None)


class _FixedErrorHandler(RequestHandler):
    """aiohttp's per-connection protocol with fixed error pages (issue 13, finding 8).

    aiohttp's own pages for a request that fails to parse quote the bytes that failed.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # its logging; body discarded
        text = f"{status} {_phrase(status)}\n"
        response = _FixedErrorPage(status=status, text=text)
        response.force_close()
        return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _handler(server: Server) -> RequestHandler:
    """What ``server()`` makes, with fixed error pages."""
    return _FixedErrorHandler(server, loop=server._loop, **server._kwargs)


def fixed_error_pages(server: Server) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for ``server`` (an ``AppRunner``'s) whose parse-error pages are fixed
    texts without ``Server``: for listeners that need no connection guard."""
    return partial(_handler, server)


class _GuardedProtocol:
    """Wraps aiohttp's per-connection protocol to add a connection cap and the head and
    keep-alive deadlines (``ohttp.aio.engine.ConnectionDeadline``, the engine's rule)."""

    def __init__(self, tracker: ConnectionTracker, inner: RequestHandler) -> None:
        self._tracker = tracker
        self.inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._deadline: ConnectionDeadline | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if not self._tracker.admit(self):
            # Over the connection cap: a fixed answer, then close (never reaches aiohttp).
            # A stream server's transport can write; uvloop's is no asyncio.WriteTransport
            # subclass, so an isinstance check would skip the answer there.
            cast(asyncio.WriteTransport, transport).write(OVER_CAPACITY)
            transport.close()
            return
        self._admitted = True
        tracker = self._tracker
        self._deadline = ConnectionDeadline(
            transport, tracker.header_timeout, tracker.idle_timeout
        )
        self.inner.connection_made(transport)

    @property
    def busy(self) -> bool:
        """Whether a request head is complete and its handler runs."""
        return self._deadline is not None and self._deadline.busy

    def request_started(self) -> None:
        if self._deadline is not None:
            self._deadline.request_started()

    def request_ended(self) -> None:
        if self._deadline is not None:
            self._deadline.request_ended()

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            self._deadline.bytes_arrived()
        if self._admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._admitted:
            self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._admitted:
            self._tracker.release(self)
            self.inner.connection_lost(exc)


@dataclass
class ConnectionTracker:
    """Counts client connections of one listener and maps aiohttp protocols to their guards.

    ``on_count`` hears the number of open connections whenever it changes (for a gauge).
    A handler marks its request with ``guard_of(request.protocol)`` or is wrapped by
    :func:`tracked`, so the head deadline never cuts off a request being handled.
    ``keepalive_timeout`` bounds the idle time between requests (``header_timeout`` if None).
    """

    max_connections: int
    header_timeout: float
    on_count: Callable[[int], None] = lambda _: None
    keepalive_timeout: float | None = None
    _guards: dict[RequestHandler, _GuardedProtocol] = field(default_factory=dict)

    @property
    def idle_timeout(self) -> float:
        """How long a connection may idle between requests."""
        return self.header_timeout if self.keepalive_timeout is None else self.keepalive_timeout

    def admit(self, guard: _GuardedProtocol) -> bool:
        if len(self._guards) >= self.max_connections:
            return False
        self._guards[guard.inner] = guard
        self.on_count(len(self._guards))
        return True

    def release(self, guard: _GuardedProtocol) -> None:
        self._guards.pop(guard.inner, None)
        self.on_count(len(self._guards))

    def guard_of(self, protocol: object) -> _GuardedProtocol | None:
        return self._guards.get(protocol) if isinstance(protocol, RequestHandler) else None

    def factory(self, server: Server) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            return _GuardedProtocol(self, _handler(server))  # type: ignore[return-value]

        return make


async def send_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response`` now, then close the connection.

    ``Connection: close`` and ``force_close()`` alone leave aiohttp "lingering" up to 10 s
    to read an unread request body, which a client that stalls its body would keep.
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # asyncio writes what is buffered before closing


async def write_within(
    request: web.BaseRequest, response: web.StreamResponse, data: bytes, timeout: float
) -> None:
    """``response.write(data)``, or abort the connection if the client stalls that long.

    A write waits only while the client is not taking bytes (the transport's buffer is over
    its high-water mark), so this bounds a stall, not a slow but steady download (as nginx's
    ``send_timeout``). Aborting drops the unsent bytes, so nothing stays pinned.
    """
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise WriteStalled() from None


def client_gone(request: web.BaseRequest, exc: ConnectionError) -> web.StreamResponse:
    """Log a client's disconnect as the normal event it is, at info with a fixed code.

    Returns a response for the handler to return: aiohttp cannot send it and drops it
    quietly, where a ``ConnectionError`` raised from a handler would be logged as an error
    with a traceback.
    """
    log_client_gone(exc)
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)  # never sent: the transport is gone
