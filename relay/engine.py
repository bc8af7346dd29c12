"""The relay's routes on the serving engine (``ohttp.aio.engine``), for ``ohttp relay``.

The same routes and answers as the aiohttp application of ``relay.app``, whose state,
lifecycle, readiness checks and route table it uses: ``engine_handler(app)`` after the app
started. The request handling is ``relay.routes``' and ``relay.forward``'s, shared with the
aiohttp transport through ``relay.exchange.ClientRequest``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from ohttp.aio.engine import Exchange, Handler
from relay.app import ROUTES
from relay.routes import answer
from relay.state import STATE_KEY

__all__ = ["engine_handler"]


def engine_handler(app: web.Application) -> Handler:
    """The engine handler for the relay ``app`` (made by ``relay.app.create_app``)."""
    state = app[STATE_KEY]
    table = app[ROUTES]
    write_timeout = state.config.write_timeout

    async def handle(exchange: Exchange) -> None:
        head = exchange.head
        request = _EngineRequest(exchange, write_timeout)
        reply = await answer(table.find(head.method, head.path), request, state, head.target)
        if reply is None:  # streamed through the request
            return
        if reply.close:
            exchange.close()  # the engine sends the field and ends the connection after it
        exchange.respond(reply.status, reply.headers, reply.body)

    return handle


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
