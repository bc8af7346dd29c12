"""A client of the serving engine for its tests: a real ``EngineServer`` on loopback and raw
sockets that send exact bytes and read whole responses."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from aiohttp import web

from ohttp.aio.engine import EngineLimits, EngineServer, Exchange, Lane, LaneRequest
from tests.support import LOOPBACK

Handler = Callable[[Exchange], Awaitable[None]]
READ_BOUND = 5.0  # seconds any one read may wait before the test fails instead of hanging
SMALL_BUFFER = 16 * 1024  # kernel socket buffers for the flow-control tests


def handing_over(handler: Handler) -> Lane:
    """A lane that takes every request offered and hands it to ``handler``."""

    def lane(request: LaneRequest) -> bool:
        request.hand_over(handler)
        return True

    return lane


def declining(_: Handler) -> Lane:
    """A lane that declines every request offered."""
    return lambda _: False


class LaneSpy:
    """Counts the requests a server's real lane took (``wrap`` its ``lane(app)`` maker)."""

    def __init__(self) -> None:
        self.taken = 0

    def wrap(self, make: Callable[[web.Application], Lane | None],
             ) -> Callable[[web.Application], Lane | None]:
        def made(app: web.Application) -> Lane | None:
            lane = make(app)
            if lane is None:
                return None

            def counted(request: LaneRequest) -> bool:
                taken = lane(request)
                self.taken += taken
                return taken

            return counted

        return made


# How ``listening`` sets up its server's lane when given none: test_engine runs its whole
# suite once without a lane and once with each of these, which must not change any answer.
LANE_MODES: dict[str, Callable[[Handler], Lane] | None] = {
    "no lane": None, "lane hands over": handing_over, "lane declines": declining,
}
lane_mode: Callable[[Handler], Lane] | None = None


@dataclass
class Listener:
    server: EngineServer
    port: int
    emptied: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def listening(
    handler: Handler, *, small_buffers: bool = False, max_connections: int = 8,
    header_timeout: float = 5.0, keepalive_timeout: float = 5.0, lane: Lane | None = None,
    **sizes: int,
) -> AsyncIterator[Listener]:
    """An ``EngineServer`` for ``handler`` on a free loopback port (accepted sockets inherit the
    listening socket's buffer sizes on Linux, so ``small_buffers`` shrinks theirs)."""
    limits = EngineLimits(max_connections, header_timeout, keepalive_timeout, **sizes)
    listener: Listener

    def on_count(count: int) -> None:
        if count == 0:
            listener.emptied.set()

    if lane is None and lane_mode is not None:
        lane = lane_mode(handler)
    server = EngineServer(handler, limits, on_count, lane=lane)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffers:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.bind((LOOPBACK, 0))
    listener = Listener(server, int(sock.getsockname()[1]))
    loop = asyncio.get_running_loop()
    tcp = await loop.create_server(server.factory, sock=sock)
    try:
        yield listener
    finally:
        tcp.close()
        await server.shutdown(0)
        await tcp.wait_closed()


async def connect(port: int, *, small_buffers: bool = False,
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffers:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (LOOPBACK, port))
    return await asyncio.open_connection(sock=sock, limit=1 << 20)


@dataclass
class Response:
    status: int
    fields: list[tuple[str, str]]
    body: bytes
    raw_head: bytes

    def get(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key == name.lower()]
        return values[0] if values else None


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> Response:
    """One response, framed by its Content-Length or its chunked coding (RFC 9112 §6.3)."""
    raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_BOUND)
    status_line, *lines = raw_head[:-4].decode("latin-1").split("\r\n")
    version, status, _reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1"
    fields = [(name.lower(), value.strip())
              for name, _, value in (line.partition(":") for line in lines)]
    response = Response(int(status), fields, b"", raw_head)
    if head_only or response.status in (100, 204, 304):
        return response
    if response.get("transfer-encoding") == "chunked":
        response.body = await _read_chunked(reader)
    else:
        length = int(response.get("content-length") or 0)
        response.body = await asyncio.wait_for(reader.readexactly(length), READ_BOUND)
    return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), READ_BOUND)
        size = int(size_line[:-2], 16)
        piece = await asyncio.wait_for(reader.readexactly(size + 2), READ_BOUND)
        assert piece.endswith(b"\r\n")
        if size == 0:
            return body
        body += piece[:-2]


async def read_to_end(reader: asyncio.StreamReader, bound: float = READ_BOUND) -> bytes:
    """Everything until the server closes (a reset counts as the end); ``TimeoutError`` when
    a read waits longer than ``bound``."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while piece := await asyncio.wait_for(reader.read(65536), bound):
            data += piece
    return data


def fixed(status: int) -> bytes:
    """The text of the engine's fixed error page."""
    return f"{status} {HTTPStatus(status).phrase}\n".encode()


async def hello(exchange: Exchange) -> None:
    exchange.respond(200, [("Content-Type", "text/plain")], f"hello {exchange.head.path}".encode())


async def echo(exchange: Exchange) -> None:
    body = b"".join([piece async for piece in exchange.body.iter_any()])
    exchange.respond(200, [], body)


def recording(seen: list[str], handler: Handler = hello) -> Handler:
    """``handler``, first noting each request's path in ``seen``."""

    async def noted(exchange: Exchange) -> None:
        seen.append(exchange.head.path)
        await handler(exchange)

    return noted


def get(path: str = "/", *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: x", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
