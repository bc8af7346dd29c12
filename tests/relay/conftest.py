"""A recording gateway (a real aiohttp server on 127.0.0.1 that stores everything it receives)
and helpers to run the relay in-process or as a real subprocess."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from relay.config import GatewayTarget, RelayConfig
from relay.serve import serve

GATEWAY_PATH = "/.well-known/ohttp-gateway"


def key_list() -> bytes:
    """A valid application/ohttp-keys body: one X25519 config with HKDF-SHA256/AES-128-GCM."""
    config = struct.pack("!BH", 1, 0x0020) + bytes(range(32)) + struct.pack("!HHH", 4, 1, 1)
    return struct.pack("!H", len(config)) + config


@dataclass
class Recorded:
    method: str
    path_qs: str
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class RecordingGateway:
    """Stores each request; ``mode`` chooses the answer."""

    mode: str = "echo"
    seen: list[Recorded] = field(default_factory=list)
    keys: bytes = field(default_factory=key_list)
    keys_cache_control: str = "max-age=600"
    status: int = 200
    content_type: str = "message/ohttp-res"
    extra_headers: dict[str, str] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    @property
    def posts(self) -> list[Recorded]:
        """Forwarded requests (the key mirror's GETs left out)."""
        return [r for r in self.seen if r.method != "GET"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "drop":
            # Read part of the body, then break off the connection without answering.
            await request.content.read(10)
            self.seen.append(Recorded(request.method, request.path_qs,
                                      list(request.raw_headers), b""))
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(1)
            raise ConnectionResetError
        body = await request.read()
        self.seen.append(Recorded(request.method, request.path_qs, list(request.raw_headers), body))
        if request.method == "GET":
            return web.Response(body=self.keys, headers={
                "Content-Type": "application/ohttp-keys", "Cache-Control": self.keys_cache_control,
                "Set-Cookie": "gw=1"})
        if self.mode == "slow":
            return await self._slow(request)
        if self.mode == "large":  # over the relay's small-answer bound
            return web.Response(body=b"L" * 100_000, headers={"Content-Type": self.content_type})
        if self.mode == "hang":
            await asyncio.wait_for(self.release.wait(), 20)
        headers = {"Content-Type": self.content_type, **self.extra_headers}
        return web.Response(status=self.status, body=body if self.mode == "echo" else b"gw-body",
                            headers=headers)

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "message/ohttp-chunked-res",
                                               "Incremental": "?1"})
        await response.prepare(request)
        await response.write(b"first-chunk")
        await asyncio.wait_for(self.release.wait(), 20)
        await response.write(b"second-chunk")
        await response.write_eof()
        return response


@pytest.fixture
async def gateway() -> AsyncIterator[RecordingGateway]:
    recorder = RecordingGateway()
    app = web.Application()
    app.router.add_route("*", GATEWAY_PATH, recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder.url = f"http://127.0.0.1:{port}{GATEWAY_PATH}"
    yield recorder
    recorder.release.set()
    await runner.cleanup()


def relay_config(gateway_url: str, **overrides: object) -> RelayConfig:
    values: dict[str, object] = {"gateways": (GatewayTarget("", gateway_url),),
                                 "listen_port": 0}
    values.update(overrides)
    return RelayConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def relay_url(gateway: RecordingGateway) -> AsyncIterator[str]:
    async with serve(relay_config(gateway.url, header_timeout=2.0, body_timeout=2.0,
                                  max_body_bytes=2 * 1024 * 1024)) as listening:
        yield f"http://127.0.0.1:{listening.port}"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
