"""Connection cap, absolute-form targets, key mirror while the gateway is down, TLS both hops."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web

from relay.config import GatewayTarget
from relay.serve import serve

from .conftest import GATEWAY_PATH, RecordingGateway, key_list, relay_config

REQ = "message/ohttp-req"


async def raw_exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = b""
    while piece := await asyncio.wait_for(reader.read(4096), 10):
        answer += piece
    writer.close()
    return answer


async def test_absolute_form_target_forwards_nothing(gateway: RecordingGateway,
                                                     relay_url: str) -> None:
    port = int(relay_url.rsplit(":", 1)[1])
    for target in (b"http://127.0.0.1:1/", b"http://localhost/", b"//evil.example/"):
        answer = await raw_exchange(port, b"POST " + target + b" HTTP/1.1\r\nHost: evil\r\n"
                                    b"Content-Type: message/ohttp-req\r\nContent-Length: 1\r\n"
                                    b"Connection: close\r\n\r\nx")
        assert answer.startswith(b"HTTP/1.1 404")
    assert gateway.posts == []


async def test_connection_cap_answers_503(gateway: RecordingGateway) -> None:
    async with serve(relay_config(gateway.url, max_connections=1)) as listening:
        _, holder = await asyncio.open_connection("127.0.0.1", listening.port)
        holder.write(b"POST / HTTP/1.1\r\n")  # holds the only slot
        answer = await raw_exchange(listening.port, b"GET /healthz HTTP/1.1\r\n\r\n")
        holder.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer


async def test_key_mirror_serves_cached_copy_while_gateway_down() -> None:
    gets = 0

    async def keys(_: web.Request) -> web.Response:
        nonlocal gets
        gets += 1
        return web.Response(body=key_list(), headers={"Content-Type": "application/ohttp-keys",
                                                      "Cache-Control": "max-age=3600"})

    app = web.Application()
    app.router.add_get(GATEWAY_PATH, keys)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{GATEWAY_PATH}"
    async with serve(relay_config(url)) as listening, aiohttp.ClientSession() as session:
        mirror = f"http://127.0.0.1:{listening.port}/ohttp-keys"
        async with session.get(mirror) as response:
            assert response.status == 200
        await runner.cleanup()  # the gateway goes away
        async with session.get(mirror) as response:
            assert response.status == 200 and await response.read() == key_list()
            assert 3000 < int(response.headers["Cache-Control"].removeprefix("max-age=")) <= 3600
    assert gets == 1


async def test_tls_both_hops_with_client_certificate(tmp_path: Path) -> None:
    authority = trustme.CA()
    gateway_cert = authority.issue_cert("127.0.0.1")
    relay_cert = authority.issue_cert("127.0.0.1")
    client_cert = authority.issue_cert("relay.client.example")
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    relay_chain, relay_key = tmp_path / "relay.pem", tmp_path / "relay.key"
    relay_cert.private_key_and_cert_chain_pem.write_to_path(str(relay_chain))
    relay_cert.private_key_pem.write_to_path(str(relay_key))
    client_chain, client_key = tmp_path / "client.pem", tmp_path / "client.key"
    client_cert.cert_chain_pems[0].write_to_path(str(client_chain))
    client_cert.private_key_pem.write_to_path(str(client_key))

    seen_peer_certs: list[object] = []

    async def echo(request: web.Request) -> web.Response:
        assert request.transport is not None
        if request.method == "POST":  # (the key mirror's GET lands here too)
            seen_peer_certs.append(request.transport.get_extra_info("peercert"))
        return web.Response(body=await request.read(), content_type="message/ohttp-res")

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    gateway_cert.configure_cert(server_ctx)
    authority.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # the gateway tells its relays apart by cert
    app = web.Application()
    app.router.add_route("*", GATEWAY_PATH, echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}{GATEWAY_PATH}"
    config = relay_config(url, gateways=(GatewayTarget("", url),), upstream_ca_file=str(ca_file),
                          client_cert=str(client_chain), client_key=str(client_key),
                          tls_cert=str(relay_chain), tls_key=str(relay_key))
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        async with serve(config) as listening, aiohttp.ClientSession() as session, session.post(
            f"https://127.0.0.1:{listening.port}/", data=b"sealed", ssl=client_ctx,
            headers={"Content-Type": REQ},
        ) as response:
            assert (response.status, await response.read()) == (200, b"sealed")
    finally:
        await runner.cleanup()
    assert len(seen_peer_certs) == 1 and "relay.client.example" in repr(seen_peer_certs[0])


async def test_untrusted_gateway_certificate_is_502(tmp_path: Path) -> None:
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_ctx)
    hits = 0

    async def echo(_: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.Response(body=b"x", content_type="message/ohttp-res")

    app = web.Application()
    app.router.add_route("*", GATEWAY_PATH, echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}{GATEWAY_PATH}"
    try:
        async with serve(relay_config(url)) as listening, aiohttp.ClientSession() as session, \
                session.post(f"http://127.0.0.1:{listening.port}/", data=b"x",
                             headers={"Content-Type": REQ}) as response:
            assert response.status == 502  # system CAs do not trust the test CA
    finally:
        await runner.cleanup()
    assert hits == 0


async def test_header_deadline_spares_busy_keepalive_and_ends_idle(
    gateway: RecordingGateway,
) -> None:
    """The lazily re-armed header deadline: a keep-alive client that keeps asking for longer
    than header_timeout in total is served throughout; once idle past it, it is cut off."""
    request = (b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
               b"Content-Length: 2\r\n\r\nhi")
    async with serve(relay_config(gateway.url, header_timeout=0.5)) as listening:
        reader, writer = await asyncio.open_connection("127.0.0.1", listening.port)
        for _ in range(8):  # about 1.6 s on one connection, each head well within 0.5 s
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            assert await asyncio.wait_for(reader.readexactly(2), 10) == b"hi"
            await asyncio.sleep(0.2)
        # Idle now: the connection is closed without an answer (bounded wait, no timing check).
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    assert len(gateway.posts) == 8
