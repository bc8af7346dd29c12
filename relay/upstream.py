"""A lean HTTP/1.1 client for the one hop relay -> gateway.

Why not aiohttp.ClientSession: it costs several times the CPU per forwarded request and adds
behaviour a relay must not have (User-Agent, Accept-Encoding, redirects, decompression).
This client sends exactly the header lines it is given, streams both bodies, parses
Content-Length, chunked and close-delimited response bodies with strict limits, keeps a small
keep-alive pool per gateway and never retries (RFC 9458 §6.5): any failure is reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from dataclasses import dataclass

from relay.config import GatewayTarget

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE = 1024
READ_SIZE = 64 * 1024
_CRLF = b"\r\n"


class UpstreamError(Exception):
    """The forward failed; the relay answers 502. Messages are fixed strings."""


class UpstreamTimeout(UpstreamError):
    """The gateway did not answer in time; the relay answers 504."""


class UpstreamProtocolError(UpstreamError):
    """The gateway's answer was not valid HTTP/1.1 within our limits."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, idle_timeout: float) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and now - self.idle_since < idle_timeout
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    headers: tuple[tuple[str, str], ...]  # names lower-cased, values as sent
    content_length: int | None
    chunked: bool
    keep_alive: bool

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


def _parse_head(raw: bytes) -> ResponseHead:
    lines = raw[: -len(_CRLF * 2)].split(_CRLF)
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise UpstreamProtocolError("invalid status line from gateway")
    if len(rest) > 3 and rest[3:4] != b" ":
        raise UpstreamProtocolError("invalid status line from gateway")
    if len(lines) - 1 > MAX_HEADER_LINES:
        raise UpstreamProtocolError("too many header lines from gateway")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        # RFC 9112 §5.1: no whitespace before the colon; obs-fold (leading space) rejected.
        if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise UpstreamProtocolError("invalid header line from gateway")
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return _framing(int(code), version, tuple(headers))


def _framing(status: int, version: bytes, headers: tuple[tuple[str, str], ...]) -> ResponseHead:
    connection = {t.strip().lower() for k, v in headers if k == "connection" for t in v.split(",")}
    keep_alive = version == b"HTTP/1.1" and "close" not in connection
    encodings = [v.strip().lower() for k, v in headers if k == "transfer-encoding"]
    lengths = {v.strip() for k, v in headers if k == "content-length"}
    chunked = False
    length: int | None = None
    if encodings:
        # RFC 9112 §6.3: chunked must be the final (here: only) coding; TE wins over CL.
        if encodings != ["chunked"]:
            raise UpstreamProtocolError("unsupported transfer coding from gateway")
        chunked = True
    elif lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise UpstreamProtocolError("invalid content-length from gateway")
        length = int(next(iter(lengths)))
    if status in (204, 304) or 100 <= status < 200:
        chunked, length = False, 0
    elif not chunked and length is None:
        keep_alive = False  # close-delimited body (RFC 9112 §6.3 rule 8)
    return ResponseHead(status, headers, length, chunked, keep_alive)


class UpstreamResponse:
    """A response whose head has arrived; iterate :meth:`chunks` for the body exactly once."""

    def __init__(self, pool: UpstreamPool, conn: _Connection, head: ResponseHead,
                 sender: asyncio.Task[None] | None) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self._sender = sender
        self.head = head

    @property
    def status(self) -> int:
        return self.head.status

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (an idle gap longer than the read timeout fails)."""
        conn = self._conn
        assert conn is not None
        reader = conn.reader
        if self.head.chunked:
            async for piece in self._chunked_body(reader):
                yield piece
        elif self.head.content_length is not None:
            remaining = self.head.content_length
            while remaining:
                piece = await self._read(reader.read(min(READ_SIZE, remaining)))
                if not piece:
                    raise UpstreamError("gateway closed the connection mid-body")
                remaining -= len(piece)
                yield piece
        else:
            while piece := await self._read(reader.read(READ_SIZE)):
                yield piece
        await self._finish()

    async def _chunked_body(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            line = await self._read_line(reader)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16) if size_text else -1
            except ValueError:
                size = -1
            if size < 0 or len(size_text) > 16:
                raise UpstreamProtocolError("invalid chunk size from gateway")
            if size == 0:
                while await self._read_line(reader):  # trailer section: dropped
                    pass
                return
            remaining = size
            while remaining:
                piece = await self._read(reader.read(min(READ_SIZE, remaining)))
                if not piece:
                    raise UpstreamError("gateway closed the connection mid-body")
                remaining -= len(piece)
                yield piece
            if await self._read(reader.readexactly(2)) != _CRLF:
                raise UpstreamProtocolError("invalid chunk framing from gateway")

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes:
        line = await self._read(reader.readuntil(_CRLF))
        if len(line) > MAX_CHUNK_LINE:
            raise UpstreamProtocolError("chunk line too long from gateway")
        return line[:-2]

    async def _read(self, awaitable: Awaitable[bytes]) -> bytes:
        try:
            async with asyncio.timeout(self._pool.read_timeout):
                return await awaitable
        except TimeoutError:
            self.abort()
            raise UpstreamTimeout("gateway read timed out") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.abort()
            raise UpstreamProtocolError("gateway broke off the body") from None
        except OSError:
            self.abort()
            raise UpstreamError("gateway connection failed") from None

    async def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        sender = self._sender
        sent_ok = sender is None or (
            sender.done() and not sender.cancelled() and sender.exception() is None
        )
        if self.head.keep_alive and sent_ok:
            self._pool.release(conn)
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
        self._idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        # Reuse only a connection that is still open and idle for less than the idle timeout
        # (well below common server keep-alive timeouts): a reused connection the gateway already
        # closed would fail the request, and we do not retry.
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now, self._idle_timeout):
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.gateway.host, self.gateway.port, ssl=self._ssl,
                    server_hostname=self.gateway.host if self._ssl else None,
                    limit=MAX_HEAD_BYTES,
                )
        except TimeoutError:
            raise UpstreamTimeout("gateway connect timed out") from None
        except (OSError, ssl.SSLError):
            raise UpstreamError("gateway unreachable") from None
        return _Connection(reader, writer)

    def release(self, conn: _Connection) -> None:
        if len(self._idle) >= self._max_idle or conn.writer.is_closing():
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def request(self, method: str, headers: list[tuple[str, str]],
                      body: AsyncIterable[bytes] | bytes, *, chunked: bool) -> UpstreamResponse:
        """Send ``method`` to the gateway URL with exactly ``headers`` (plus Host and framing).

        ``body`` is bytes (sent with Content-Length) or an async iterable (sent with chunked
        transfer coding when ``chunked``, otherwise the caller put Content-Length in headers).
        The request body is sent concurrently with waiting for the response head, so a gateway
        that answers incrementally is seen at once.
        """
        conn = await self._connect()
        head = [f"{method} {self.gateway.target} HTTP/1.1", f"host: {self.gateway.host_header}"]
        head.extend(f"{name}: {value}" for name, value in headers)
        if isinstance(body, bytes) and method != "GET":
            head.append(f"content-length: {len(body)}")
        if chunked:
            head.append("transfer-encoding: chunked")
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        sender: asyncio.Task[None] | None = None
        if isinstance(body, bytes):
            # One write, no sender task: the common small request costs one syscall.
            conn.writer.write(head_bytes + body)
        else:
            conn.writer.write(head_bytes)
            sender = asyncio.ensure_future(_send_body(conn.writer, body, chunked))
        try:
            response_head = await self._read_head(conn, sender)
        except BaseException:
            if sender is not None:
                sender.cancel()
            conn.close()
            raise
        return UpstreamResponse(self, conn, response_head, sender)

    async def _read_head(self, conn: _Connection,
                         sender: asyncio.Task[None] | None) -> ResponseHead:
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    read = conn.reader.readuntil(_CRLF * 2)
                    raw = await (read if sender is None else _first_of(read, sender))
                    head = _parse_head(raw)
                    # 1xx interim responses are not forwarded (we never send Expect).
                    if not 100 <= head.status < 200:
                        return head
        except TimeoutError:
            raise UpstreamTimeout("gateway response timed out") from None
        except (asyncio.IncompleteReadError, OSError, ssl.SSLError):
            raise UpstreamError("gateway closed the connection") from None
        except asyncio.LimitOverrunError:
            raise UpstreamProtocolError("gateway response head too large") from None


async def _first_of(read: Awaitable[bytes], sender: asyncio.Task[None]) -> bytes:
    """Await ``read``; if the body sender fails first (client or gateway broke off), raise."""
    reader = asyncio.ensure_future(read)
    try:
        while True:
            waiting = {reader} if sender.done() else {reader, sender}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                return reader.result()
            if sender.cancelled():
                raise asyncio.CancelledError
            error = sender.exception()
            if error is not None:
                raise error
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


async def _send_body(writer: asyncio.StreamWriter, body: AsyncIterable[bytes] | bytes,
                     chunked: bool) -> None:
    if isinstance(body, bytes):
        if body:
            writer.write(body)
        await writer.drain()
        return
    async for piece in body:
        if not piece:
            continue
        if chunked:
            writer.writelines((b"%x\r\n" % len(piece), piece, _CRLF))
        else:
            writer.write(piece)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
