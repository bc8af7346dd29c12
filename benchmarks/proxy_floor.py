"""The forwarding floor: the least a Python relay on uvloop can do per request (a benchmark
target, not a relay).

    python -m benchmarks.proxy_floor --listen 127.0.0.1:PORT --upstream http://127.0.0.1:P/PATH

One process, uvloop, llhttp (httptools) on both sides, asyncio protocols with no coroutine per
request: each client POST is parsed, sent upstream in one write on a pooled keep-alive
connection, and the upstream's answer goes back in one write with its status and body. It
checks nothing (no media type, no limits, no deadlines, no header policy) and handles neither
pipelining nor streaming: whatever a real relay must do on top of this costs more. GET /healthz
answers 200 for the start-up probe.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

import httptools
import uvloop

from ohttp.encapsulation import REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE

_HEALTHY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
_ANSWER_HEAD = b"content-type: " + RESPONSE_MEDIA_TYPE.encode() + b"\r\ncontent-length: "


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to the upstream; answers the client it was lent to."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.client: _Client | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        body = b"".join(self._body)
        self._body.clear()
        if self._parser.should_keep_alive():
            self._pool.idle.append(self)
        elif self.transport is not None:
            self.transport.close()
        if client is not None:
            client.answer(self._parser.get_status_code(), body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._pool.idle:
            self._pool.idle.remove(self)
        if self.client is not None:
            self.client.answer(502, b"")


class _Pool:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._head = (f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
                      f"content-type: {REQUEST_MEDIA_TYPE}\r\ncontent-length: ").encode()
        self.idle: list[_Upstream] = []
        self._connecting: set[asyncio.Task[None]] = set()

    def forward(self, client: _Client, body: bytes) -> None:
        data = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        if self.idle:
            self._send(self.idle.pop(), client, data)
        else:
            task = asyncio.ensure_future(self._connect_and_send(client, data))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, client: _Client, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: _Upstream(self), self._host,
                                                       self._port)
        except OSError:
            client.answer(502, b"")
            return
        self._send(upstream, client, data)

    @staticmethod
    def _send(upstream: _Upstream, client: _Client, data: bytes) -> None:
        assert upstream.transport is not None
        upstream.client = client
        upstream.transport.write(data)


class _Client(asyncio.Protocol):
    """One client connection, one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url, self._url = self._url, b""
        body = b"".join(self._body)
        self._body.clear()
        if url == b"/healthz" and self._transport is not None:
            self._transport.write(_HEALTHY)
        else:
            self._pool.forward(self, body)

    def answer(self, status: int, body: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            # No reason phrase: RFC 9112 §4 allows it empty, and nobody reads it here.
            self._transport.write(b"HTTP/1.1 %d \r\n%s%d\r\n\r\n%s"
                                  % (status, _ANSWER_HEAD, len(body), body))


async def _serve(host: str, port: int, upstream: str) -> None:
    pool = _Pool(upstream)
    server = await asyncio.get_running_loop().create_server(lambda: _Client(pool), host, port,
                                                            backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT/PATH")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    uvloop.run(_serve(host, int(port), args.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
