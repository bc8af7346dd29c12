"""The upstream HTTP/1.1 response parser and pool: framing, split reads, limits, no retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relay.config import GatewayTarget
from relay.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeout
from relay.h1 import MAX_HEAD_BYTES
from relay.upstream import UpstreamConnection, UpstreamPool

CL_RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: message/ohttp-res\r\n"
               b"Content-Length: 11\r\nSet-Cookie: a=b\r\n\r\nhello world")
CHUNKED_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-chunked-res\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n")


async def feed(raw: bytes, step: int, *, eof: bool = False) -> tuple[UpstreamConnection, bytes]:
    """Parse ``raw`` arriving ``step`` bytes at a time; returns the connection and the body."""
    conn = UpstreamConnection(asyncio.get_running_loop())
    conn.expect_response()
    for start in range(0, len(raw), step):
        conn.data_received(raw[start:start + step])
    if eof:
        conn.connection_lost(None)
    body = b""
    if conn.head is not None:
        while piece := await conn.next_piece(1.0):
            body += piece
    return conn, body


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
async def test_content_length_split_reads(step: int) -> None:
    conn, body = await feed(CL_RESPONSE, step)
    assert conn.head is not None and conn.head.status == 200
    assert body == b"hello world" and conn.body_done and conn.reusable()
    assert conn.head.content_length == 11 and conn.head.keep_alive
    # Only the fields the relay reads are kept; the rest never leave the parser.
    assert [name for name, _ in conn.head.headers] == ["content-type", "content-length"]


@pytest.mark.parametrize("step", [1, 3, 1000])
async def test_chunked_with_extensions_and_trailers(step: int) -> None:
    conn, body = await feed(CHUNKED_RESPONSE, step)
    assert body == b"hello 0123456789"
    assert conn.head is not None and conn.head.chunked and conn.reusable()


async def test_close_delimited_body_ends_with_the_connection() -> None:
    conn, body = await feed(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\npart one, part two", 5,
                            eof=True)
    assert body == b"part one, part two"
    assert conn.head is not None and not conn.head.keep_alive and not conn.reusable()


async def test_interim_response_skipped_and_no_body_statuses() -> None:
    conn, body = await feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 4)
    assert conn.head is not None and conn.head.status == 204 and body == b"" and conn.body_done


async def test_http10_and_connection_close_are_not_reused() -> None:
    conn, _ = await feed(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 100)
    assert conn.head is not None and not conn.head.keep_alive
    conn, _ = await feed(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n"
                         b"Content-Length: 1\r\n\r\nx", 100)
    assert conn.head is not None and not conn.head.keep_alive


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # not hex
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 17 + b"\r\n",  # too big
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",  # no CRLF after data
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1;" + b"e" * 2000,  # long line
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",  # whitespace before the colon
    b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",  # obs-fold
    b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",  # bare LF
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * 101 + b"\r\n",  # too many lines
    b"HTTP/1.1 200 OK\r\n" + b"A: " + b"b" * MAX_HEAD_BYTES,  # head never ends
    b"HTTP/1.1 200 OK\r\nContent-Length: 1" + b"0" * 19 + b"\r\n\r\nx",  # absurd length
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    + b"T: " + b"t" * 17000 + b"\r\n\r\n",  # trailer section over the limit
])
async def test_malformed_responses_fail_and_are_never_reused(raw: bytes) -> None:
    conn = UpstreamConnection(asyncio.get_running_loop())
    conn.expect_response()
    conn.data_received(raw)
    with pytest.raises(UpstreamProtocolError):
        await conn.read_head(1.0)
        while await conn.next_piece(1.0):
            pass
    assert not conn.reusable()


@pytest.mark.parametrize("step", [1, 1000])
async def test_bytes_after_a_complete_response_keep_it_but_end_the_connection(step: int) -> None:
    conn, body = await feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA", step)
    assert body == b"x" and conn.body_done and not conn.reusable()


async def test_bytes_on_an_idle_connection_end_it() -> None:
    conn = UpstreamConnection(asyncio.get_running_loop())
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    conn.expect_response()
    with pytest.raises(UpstreamProtocolError):
        await conn.read_head(1.0)


async def test_connection_lost_mid_body_is_an_error() -> None:
    with pytest.raises(UpstreamError, match="mid-body"):
        await feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 100, eof=True)


# --------------------------------------------------------------------------- over real sockets

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedGateway:
    """A raw TCP server on 127.0.0.1 whose answer is a coroutine; counts connections and heads."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                await self.script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve_script() -> AsyncIterator[Callable[[Script], Awaitable[tuple[ScriptedGateway,
                                                                              UpstreamPool]]]]:
    servers: list[asyncio.Server] = []
    pools: list[UpstreamPool] = []

    async def start(script: Script) -> tuple[ScriptedGateway, UpstreamPool]:
        gateway = ScriptedGateway(script)
        server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        target = GatewayTarget("", f"http://127.0.0.1:{port}/gw")
        pool = UpstreamPool(target, ssl_context=None, connect_timeout=2.0, read_timeout=0.5,
                            max_idle=4, idle_timeout=10.0)
        pools.append(pool)
        return gateway, pool

    yield start
    for pool in pools:
        pool.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_pool_streams_split_chunked_answers_and_reuses_the_connection(
    serve_script: Callable[[Script], Awaitable[tuple[ScriptedGateway, UpstreamPool]]],
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        for start in range(0, len(CHUNKED_RESPONSE), 9):  # many small writes
            writer.write(CHUNKED_RESPONSE[start:start + 9])
            await writer.drain()
            await asyncio.sleep(0)

    gateway, pool = await serve_script(answer)
    for _ in range(3):
        response = await pool.request("POST", b"content-type: message/ohttp-req\r\n", b"abc",
                                      chunked=False)
        assert b"".join([piece async for piece in response.chunks()]) == b"hello 0123456789"
    assert (gateway.connections, gateway.requests) == (1, 3)


async def test_pool_never_reuses_a_connection_its_answer_said_to_close(
    serve_script: Callable[[Script], Awaitable[tuple[ScriptedGateway, UpstreamPool]]],
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)  # and the connection stays open: only the field says close
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    gateway, pool = await serve_script(answer)
    for _ in range(2):
        response = await pool.request("POST", b"", b"abc", chunked=False)
        assert await response.read(10) == b"ok"
    assert (gateway.connections, gateway.requests) == (2, 2)  # RFC 9112 §9.6


async def test_pool_times_out_and_never_retries(
    serve_script: Callable[[Script], Awaitable[tuple[ScriptedGateway, UpstreamPool]]],
) -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    gateway, pool = await serve_script(silent)
    with pytest.raises(UpstreamTimeout):
        await pool.request("POST", b"", b"abc", chunked=False)
    assert gateway.requests == 1


async def test_pool_reports_a_gateway_that_breaks_off_once(
    serve_script: Callable[[Script], Awaitable[tuple[ScriptedGateway, UpstreamPool]]],
) -> None:
    async def break_off(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-res\r\n"
                     b"Content-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.close()

    gateway, pool = await serve_script(break_off)
    response = await pool.request("POST", b"", b"abc", chunked=False)
    with pytest.raises(UpstreamError):
        await response.read(1000)
    assert (gateway.connections, gateway.requests) == (1, 1)


async def test_pool_streams_a_chunked_request_body(
    serve_script: Callable[[Script], Awaitable[tuple[ScriptedGateway, UpstreamPool]]],
) -> None:
    received = bytearray()

    async def echo_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (size := int((await reader.readuntil(b"\r\n"))[:-2], 16)) > 0:
            received.extend((await reader.readexactly(size + 2))[:-2])
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        for piece in (b"one", b"", b"two", b"three"):
            yield piece

    _, pool = await serve_script(echo_length)
    response = await pool.request("POST", b"", body(), chunked=True)
    assert await response.read(100) == b"ok"
    assert bytes(received) == b"onetwothree"
