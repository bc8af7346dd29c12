"""The audit's real stack: one `ohttp gateway` and one `ohttp relay` subprocess per session,
plus a recording server (a real aiohttp server in its own thread) that plays both the relay's
upstream gateway (`/gw`) and the gateway's HTTP origin backend (every other path).

Helpers speak HTTP with the standard library (http.client, raw sockets) so tests can send
exactly the bytes they mean, including malformed ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.encapsulation import ClientResponseOpener, encapsulate_request
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, RunningProcess, free_port, ohttp_process

GATEWAY_PATH = "/.well-known/ohttp-gateway"
RELAY_UPSTREAM_PATH = "/gw"
# What the recording server adds to every answer: none of it may reach a client (R14).
LEAKY_HEADERS = {
    "Set-Cookie": "tracker=origin-cookie-7f3a",
    "Server": "leaky-server/9.9",
    "X-Debug": "debug-7f3a",
}
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Seen:
    method: str
    path_qs: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass
class Recorder:
    """Stores every request it gets; answers by path (see ``_answer``)."""

    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def authority(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)

    def count(self, path_prefix: str) -> int:
        return sum(1 for seen in self.snapshot() if seen.path_qs.startswith(path_prefix))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(request.method, request.path_qs, tuple(request.raw_headers), body)
        with self.lock:
            self.seen.append(seen)
        return await _answer(request, body)


async def _answer(request: web.Request, body: bytes) -> web.StreamResponse:
    path = request.path
    if path.startswith(RELAY_UPSTREAM_PATH):
        # The relay's upstream: echo the body back as an encapsulated response.
        headers = {"Content-Type": "message/ohttp-res", **LEAKY_HEADERS}
        return web.Response(body=body, headers=headers)
    if path.startswith("/hang"):
        await asyncio.sleep(3)  # longer than the gateway's --backend-timeout
        return web.Response(text="late")
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        # Headers and body length vary with the status: outer headers must not (I15).
        headers = {**LEAKY_HEADERS, "X-Status-Echo": str(status) * (status % 7 + 1)}
        return web.Response(status=status, body=b"x" * (status % 97), headers=headers)
    return web.json_response({"ok": True, "path": request.path_qs})


class ThreadedServer:
    """A real aiohttp server on 127.0.0.1 running its own event loop in a thread."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app, access_log=None)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(HTTP_TIMEOUT)

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, LOOPBACK, self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(HTTP_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(HTTP_TIMEOUT)
        self.loop.close()


@dataclass(frozen=True)
class Gateway:
    process: RunningProcess
    port: int
    key: GatewayKey
    origin: Recorder

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{GATEWAY_PATH}"

    def inner(
        self,
        path: bytes = b"/",
        *,
        method: bytes = b"GET",
        headers: bhttp.Fields = (),
        content: bytes = b"",
        authority: bytes | None = None,
    ) -> bhttp.Request:
        """An inner request to the origin backend (the only allowlisted authority)."""
        target = self.origin.authority.encode() if authority is None else authority
        return bhttp.Request(method, b"https", target, path, headers, content)


@dataclass(frozen=True)
class Relay:
    process: RunningProcess
    port: int
    upstream: Recorder


@pytest.fixture(scope="session")
def recorder() -> Iterator[Recorder]:
    recorder = Recorder(port=free_port())
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = ThreadedServer(app, recorder.port)
    server.start()
    try:
        yield recorder
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("security-gateway")
    key = GatewayKey.generate(1)
    save_key_file(directory / "keys.json", [key], force=True)
    port = free_port()
    args = [
        "gateway", "--keys", str(directory / "keys.json"), "--listen", f"{LOOPBACK}:{port}",
        "--backend", f"http://{recorder.authority}", "--backend-timeout", "1",
        "--date-window", "60", "--max-body", str(1024 * 1024),
    ]  # fmt: skip
    health = f"http://{LOOPBACK}:{port}/healthz"
    with ohttp_process(args, health, directory / "gateway.log") as process:
        yield Gateway(process, port, key, recorder)


@pytest.fixture(scope="session")
def relay(
    tmp_path_factory: pytest.TempPathFactory, recorder: Recorder, gateway: Gateway
) -> Iterator[Relay]:
    directory = tmp_path_factory.mktemp("security-relay")
    port = free_port()
    args = [
        "relay", "--listen", f"{LOOPBACK}:{port}",
        "--gateway", f"http://{recorder.authority}{RELAY_UPSTREAM_PATH}",
        "--gateway", f"real={gateway.url}",
        "--header-timeout", "3", "--body-timeout", "3", "--max-body-bytes", str(1 << 20),
    ]  # fmt: skip
    health = f"http://{LOOPBACK}:{port}/healthz"
    with ohttp_process(args, health, directory / "relay.log") as process:
        yield Relay(process, port, recorder)


# --- HTTP helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Reply:
    """One HTTP/1.1 exchange; reuses ``connection`` when given (keep-alive)."""
    conn = connection or http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, tuple(response.getheaders()), response.read())
    finally:
        if connection is None:
            conn.close()


def post_ohttp(port: int, path: str, body: bytes, **kwargs: object) -> Reply:
    headers = {"Content-Type": "message/ohttp-req"}
    return request(port, "POST", path, body, headers, **kwargs)  # type: ignore[arg-type]


def seal(gateway: Gateway, inner: bhttp.Request | bytes) -> tuple[bytes, ClientResponseOpener]:
    data = inner if isinstance(inner, bytes) else bhttp.encode_request(inner)
    return encapsulate_request(gateway.key.config, data)


def exchange(gateway: Gateway, inner: bhttp.Request | bytes) -> tuple[Reply, bhttp.Response]:
    """Encapsulate, POST straight to the gateway, and open the answer (outer must be 200)."""
    body, opener = seal(gateway, inner)
    outer = post_ohttp(gateway.port, GATEWAY_PATH, body)
    assert outer.status == 200, (outer.status, outer.body[:200])
    assert outer.header("Content-Type") == "message/ohttp-res"
    return outer, bhttp.decode_response(opener.open(outer.body))


def raw_exchange(
    port: int, data: bytes, *, timeout: float = 5.0, until: bytes | None = None
) -> tuple[bytes, int]:
    """Send raw bytes on a fresh connection and read until the server closes it, ``until``
    arrives, or the timeout passes. Returns the answer and the client's source port."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        source_port = int(sock.getsockname()[1])
        sock.sendall(data)
        chunks: list[bytes] = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            while piece := sock.recv(65536):
                chunks.append(piece)
                if until is not None and until in b"".join(chunks):
                    break
    return b"".join(chunks), source_port


def status_of(raw: bytes) -> int:
    """The status code of the first response in raw bytes (0 when there is none)."""
    parts = raw.split(b" ", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def log_text(path: Path) -> str:
    return path.read_text(errors="replace")
