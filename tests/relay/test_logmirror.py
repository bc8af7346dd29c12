"""The relay's mirror of the key transparency log: clients read the log through the relay, the
log host sees only the relay, and every client gets the same bytes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.app import GATEWAY_PATH, create_app
from gateway.config import GatewayConfig
from ohttp.aio.client import Client, LogContentError
from ohttp.aio.tlog_dir import append_keys, init_log
from ohttp.aio.tlog_serve import create_log_app
from ohttp.keys import GatewayKey, KeyRing
from relay.app import create_app as create_relay
from relay.config import ConfigError, GatewayTarget, RelayConfig

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def test_a_client_reads_the_log_through_the_relay(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    key = GatewayKey.generate(1)
    signer = init_log(tmp_path / "log", "example.com/log", tmp_path / "log.key")
    append_keys(tmp_path / "log", [key], signer, now=int(time.time()))
    fetched: list[str] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        fetched.append(request.path)
        return await handler(request)

    log_app = create_log_app(tmp_path / "log")
    log_app.middlewares.append(record)
    log_server = await aiohttp_server(log_app)
    gateway = await aiohttp_server(create_app(GatewayConfig(backend="echo"), keys=KeyRing([key])))
    config = RelayConfig(
        gateways=(GatewayTarget("", str(gateway.make_url(GATEWAY_PATH))),),
        log_mirror=str(log_server.make_url("/")),
    )
    relay = await aiohttp_server(create_relay(config))
    relay_url = str(relay.make_url("/"))
    vkey = signer.verifier.vkey
    for _ in range(2):  # two clients: the log host sees the relay's fetches, once each
        async with Client(relay_url, log=relay_url + "log", log_key=vkey) as client:
            assert (await client.request("GET", "https://echo.internal/x")).status == 200
    assert sorted(fetched) == ["/checkpoint", "/tile/0/000.p/1", "/tile/entries/000.p/1"]
    async with ClientSession() as session:
        for path, status in (("log/checkpoint", 200), ("log/tile/0/000.p/1", 200),
                             ("log/tile/../../log.key", 404), ("log/tile/0/999", 404)):
            async with session.get(relay.make_url("/" + path)) as response:
                assert response.status == status, path
    # The relay serves what it fetched; the client still checks it.
    (tmp_path / "log" / "tile/0/000.p/1").write_bytes(bytes(32))
    async with Client(relay_url, log=log_server.make_url("/").human_repr(), log_key=vkey) as c:
        with pytest.raises(LogContentError):
            await c.request("GET", "https://echo.internal/x")


def test_the_mirror_url_is_checked() -> None:
    target = (GatewayTarget("", "http://127.0.0.1:1/"),)
    with pytest.raises(ConfigError):
        RelayConfig(gateways=target, log_mirror="ftp://x")
    assert RelayConfig(gateways=target).log_mirror is None


async def test_a_file_arriving_in_pieces_is_mirrored_whole(aiohttp_server: ServerFactory) -> None:
    """The mirror caches what it fetched (full tiles for good): it must be the whole file."""
    content = bytes(range(256)) * 32  # 8 KiB, as a full hash tile is

    async def in_two_pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(content)
        await response.prepare(request)
        await response.write(content[:1000])
        await asyncio.sleep(0.05)  # the relay reads the first piece on its own
        await response.write(content[1000:])
        return response

    log_app = web.Application()
    log_app.router.add_get("/tile/0/000", in_two_pieces)
    log_server = await aiohttp_server(log_app)
    config = RelayConfig(
        gateways=(GatewayTarget("", "http://127.0.0.1:9/.well-known/ohttp-gateway"),),
        log_mirror=str(log_server.make_url("/")),
    )
    relay = await aiohttp_server(create_relay(config))
    async with ClientSession() as session:
        for _ in range(2):  # fetched, then from the cache
            async with session.get(relay.make_url("/log/tile/0/000")) as response:
                assert response.status == 200
                assert await response.read() == content
