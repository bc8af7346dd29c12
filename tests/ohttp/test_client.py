"""The client against real aiohttp servers on 127.0.0.1 that play relay+gateway, or misbehave.

The servers decapsulate with the real core (ohttp.encapsulation), so a passing test means the
client produced a request a gateway can open. Tests against the real ``ohttp relay`` and
``ohttp gateway`` processes live in tests/e2e/.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ohttp import bhttp
from ohttp.aio.client import (
    Client,
    Exchange,
    InvalidInnerResponse,
    KeyFetchError,
    KeyRejected,
    RelayRejected,
    RelayUnreachable,
    ResponseDecryptionError,
    build_inner_request,
    key_mirror_url,
)
from ohttp.aio.keyfile import save_key_file
from ohttp.encapsulation import ResponseSealer, decapsulate_request
from ohttp.errors import PROBLEM_DATE, PROBLEM_OHTTP_KEY, DecapsulationError
from ohttp.keys import GatewayKey, KeyRing
from tests.support import free_port

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
TARGET = "https://processing.internal/v1/summarize?lang=fr"
ALLOWED_OUTER_HEADERS = {"host", "content-type", "content-length"}


@dataclass
class FakeGateway:
    """Relay and gateway in one in-process server: serves keys and answers oblivious requests.

    ``answer`` builds the inner response from the decoded inner request; ``keys`` is the list of
    key rings served in turn by the keys endpoint (the last one repeats).
    """

    keys: list[KeyRing]
    answer: Callable[[bhttp.Request], bhttp.Response] = lambda request: bhttp.Response(
        200, ((b"content-type", b"text/plain"),), b"hello"
    )
    cache_control: str | None = "max-age=3600"
    outer_status: int | None = None  # answer every POST with this status instead
    outer_body: bytes = b""
    outer_content_type: str = "text/plain"
    key_rejection_status: int = 422
    key_fetches: int = 0
    bodies: list[bytes] = field(default_factory=list)
    outer_headers: list[dict[str, str]] = field(default_factory=list)
    inner_requests: list[bhttp.Request] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ohttp-keys", self.serve_keys)
        app.router.add_post("/", self.serve_request)
        return app

    async def serve_keys(self, request: web.Request) -> web.Response:
        ring = self.keys[min(self.key_fetches, len(self.keys) - 1)]
        self.key_fetches += 1
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        return web.Response(
            body=ring.encode_public(), content_type="application/ohttp-keys", headers=headers
        )

    async def serve_request(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        self.outer_headers.append({name.lower(): value for name, value in request.headers.items()})
        if self.outer_status is not None:
            return web.Response(
                status=self.outer_status, body=self.outer_body, content_type=self.outer_content_type
            )
        try:
            plaintext, sealer = decapsulate_request(self.keys[-1], body)
        except DecapsulationError:
            return key_problem(self.key_rejection_status)
        inner = bhttp.decode_request(plaintext)
        self.inner_requests.append(inner)
        return sealed(sealer, bhttp.encode_response(self.answer(inner)))


def key_problem(status: int) -> web.Response:
    """What a gateway answers for an unknown key: 422, or 400 with the problem (RFC 9458 §5.3)."""
    if status == 422:
        return web.Response(status=422)
    problem = {"type": PROBLEM_OHTTP_KEY, "title": "key configuration not accepted"}
    return web.json_response(problem, status=status, content_type="application/problem+json")


def sealed(sealer: ResponseSealer, plaintext: bytes) -> web.Response:
    return web.Response(body=sealer.seal(plaintext), content_type="message/ohttp-res")


def ring(key_id: int = 1) -> KeyRing:
    return KeyRing([GatewayKey.generate(key_id)])


def header(request: bhttp.Request, name: bytes) -> bytes | None:
    return next((value for key, value in request.headers if key == name), None)


async def start(aiohttp_server: ServerFactory, gateway: FakeGateway) -> str:
    server = await aiohttp_server(gateway.app())
    return str(server.make_url("/"))


# Success and the shape of what is sent -----------------------------------------------------


async def test_request_round_trip_and_inner_message(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway([ring()])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        response = await client.request(
            "post", TARGET, headers={"X-Trace": "abc", "Date": "spoofed"}, json={"q": "é"}
        )
    assert (response.status, response.content) == (200, b"hello")
    assert response.headers["Content-Type"] == "text/plain"
    (inner,) = gateway.inner_requests
    assert (inner.method, inner.scheme, inner.authority, inner.path) == (
        b"POST", b"https", b"processing.internal", b"/v1/summarize?lang=fr"
    )
    assert json.loads(inner.content) == {"q": "é"}
    assert header(inner, b"content-type") == b"application/json"
    assert header(inner, b"x-trace") == b"abc"
    # RFC 9458 §6.5.1: one Date, ours, an IMF-fixdate close to now.
    dates = [value for name, value in inner.headers if name == b"date"]
    assert len(dates) == 1
    assert dates[0].endswith(b" GMT")
    assert abs(parsedate_to_datetime(dates[0].decode()).timestamp() - time.time()) < 60


async def test_outer_request_carries_only_content_type(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway([ring()])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        await client.request("GET", TARGET, headers={"User-Agent": "inner-only"})
    (outer,) = gateway.outer_headers
    # RFC 9458 §5: nothing but Content-Type, plus the framing HTTP/1.1 needs.
    assert set(outer) <= ALLOWED_OUTER_HEADERS
    assert outer["content-type"] == "message/ohttp-req"
    assert outer["host"].startswith("127.0.0.1:")


async def test_each_request_uses_a_fresh_context(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway([ring()])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, clock=lambda: 1_700_000_000.0) as client:
        await client.request("GET", TARGET)
        await client.request("GET", TARGET)
    first, second = gateway.bodies
    header_length = 7  # key id, KEM, KDF, AEAD (RFC 9458 §4.1)
    assert first[:header_length] == second[:header_length]
    assert first[header_length : header_length + 32] != second[header_length : header_length + 32]


async def test_observer_sees_each_exchange(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway([ring(key_id=7)])
    relay = await start(aiohttp_server, gateway)
    seen: list[Exchange] = []
    async with Client(relay, observer=seen.append) as client:
        await client.request("POST", TARGET, content=b"abc")
    (exchange,) = seen
    assert exchange.key_id == 7
    assert exchange.status == 200
    assert exchange.request_bytes == len(gateway.bodies[0])
    assert {name.lower() for name, _ in exchange.request_headers} <= ALLOWED_OUTER_HEADERS
    assert exchange.inner_request.content == b"abc"
    assert exchange.local_address is not None
    assert exchange.local_address.startswith("127.0.0.1:")


def test_build_inner_request_validates_the_target() -> None:
    request = build_inner_request("get", "http://[::1]:8080/a?b=1#frag")
    assert (request.authority, request.path) == (b"[::1]:8080", b"/a?b=1")
    assert build_inner_request("GET", "https://example.com").path == b"/"
    for bad in ("/relative", "ftp://example.com/", "https://user:pw@example.com/"):
        with pytest.raises(ValueError):
            build_inner_request("GET", bad)
    with pytest.raises(ValueError, match="must be ASCII") as raised:
        build_inner_request("GET", "https://example.com/", {"X-Sécret": "1"})
    assert "é" not in str(raised.value)
    utf8 = build_inner_request("GET", "https://example.com/", {"X-Text": "café ✓ €uro"})
    assert (b"x-text", "café ✓ €uro".encode()) in utf8.headers
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        build_inner_request("GET", "https://example.com/", {"X-Injected": "a\r\nb"})


def test_key_mirror_url() -> None:
    assert key_mirror_url("http://relay:1/") == "http://relay:1/ohttp-keys"
    assert key_mirror_url("http://relay:1") == "http://relay:1/ohttp-keys"
    assert key_mirror_url("http://relay:1/eu/") == "http://relay:1/eu/ohttp-keys"


# Keys: sources and caching ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "fetches"),
    [("max-age=3600", 1), ("max-age=0", 2), (None, 2), ("no-store", 2), ("max-age=60", 1)],
)
async def test_keys_are_cached_as_long_as_max_age_allows(
    aiohttp_server: ServerFactory, cache_control: str | None, fetches: int
) -> None:
    gateway = FakeGateway([ring()], cache_control=cache_control)
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        await client.request("GET", TARGET)
        await client.request("GET", TARGET)
    assert gateway.key_fetches == fetches


async def test_keys_from_a_file(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    keys = ring(key_id=3)
    gateway = FakeGateway([keys])
    relay = await start(aiohttp_server, gateway)
    key_file = tmp_path / "keys.json"
    save_key_file(key_file, keys.keys)
    raw_file = tmp_path / "keys.bin"
    raw_file.write_bytes(keys.encode_public())
    for source in (key_file, raw_file):
        async with Client(relay, keys_file=source) as client:
            assert (await client.request("GET", TARGET)).status == 200
    assert gateway.key_fetches == 0


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (404, "application/ohttp-keys", b""),
        (200, "text/html", b"<html>"),
        (200, "application/ohttp-keys", b"\x00\x05abc"),
    ],
)
async def test_key_fetch_errors(
    aiohttp_server: ServerFactory, status: int, content_type: str, body: bytes
) -> None:
    async def keys(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/ohttp-keys", keys)
    server = await aiohttp_server(app)
    async with Client(str(server.make_url("/"))) as client:
        with pytest.raises(KeyFetchError):
            await client.request("GET", TARGET)


async def test_key_file_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not keys")
    for source in (tmp_path / "missing", garbage):
        async with Client("http://127.0.0.1:9/", keys_file=source) as client:
            with pytest.raises(KeyFetchError):
                await client.request("GET", TARGET)


# Retries (RFC 9458 §6.5): key refresh and date correction, each at most once ---------------


async def test_key_rejection_refetches_and_retries_once(aiohttp_server: ServerFactory) -> None:
    old, new = ring(key_id=1), ring(key_id=2)
    gateway = FakeGateway([old, new])
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        await client.key_config()  # caches the old configuration
        gateway.keys = [new]  # the gateway rotated; its mirror now serves the new key
        gateway.key_fetches = 1
        gateway.outer_status = 422
        with pytest.raises(KeyRejected) as raised:
            await client.request("GET", TARGET)
    assert raised.value.status == 422
    assert len(gateway.bodies) == 2  # the first attempt and exactly one retry
    assert gateway.bodies[0][0] == 1
    assert gateway.bodies[1][0] == 2
    assert gateway.key_fetches == 2


@pytest.mark.parametrize("rejection", [422, 400])
async def test_key_rejection_then_success(aiohttp_server: ServerFactory, rejection: int) -> None:
    # The gateway rotated: its mirror first served the old key (cached by the client), the
    # gateway now only knows the new one and answers 422, or 400 with the #ohttp-key problem.
    old, new = ring(key_id=1), ring(key_id=2)
    gateway = FakeGateway([old, new], key_rejection_status=rejection)
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        response = await client.request("GET", TARGET)
    assert (response.status, response.content) == (200, b"hello")
    assert [body[0] for body in gateway.bodies] == [1, 2]
    assert gateway.key_fetches == 2


async def test_key_rejection_with_unchanged_keys_does_not_retry(
    aiohttp_server: ServerFactory,
) -> None:
    gateway = FakeGateway([ring()], outer_status=422)
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        with pytest.raises(KeyRejected):
            await client.request("GET", TARGET)
    assert len(gateway.bodies) == 1
    assert gateway.key_fetches == 2


def date_checking_answer(server_offset: float) -> Callable[[bhttp.Request], bhttp.Response]:
    """A gateway whose clock is ``server_offset`` seconds ahead and whose window is ±30 s."""

    def answer(request: bhttp.Request) -> bhttp.Response:
        now = time.time() + server_offset
        sent = parsedate_to_datetime((header(request, b"date") or b"").decode()).timestamp()
        if abs(sent - now) <= 30:
            return bhttp.Response(200, (), b"in time")
        problem = json.dumps({"type": PROBLEM_DATE, "title": "date not acceptable"}).encode()
        return bhttp.Response(
            400,
            (
                (b"content-type", b"application/problem+json"),
                (b"date", formatdate(now, usegmt=True).encode()),
                (b"cache-control", b"no-store"),
            ),
            problem,
        )

    return answer


async def test_date_problem_retries_once_with_the_server_offset(
    aiohttp_server: ServerFactory,
) -> None:
    gateway = FakeGateway([ring()], answer=date_checking_answer(server_offset=0))
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, clock=lambda: time.time() - 3600) as client:
        first = await client.request("GET", TARGET)
        second = await client.request("GET", TARGET)
    assert (first.status, first.content) == (200, b"in time")
    assert (second.status, second.content) == (200, b"in time")
    # Each request needed its own retry: the offset is not kept (RFC 9458 §6.5.2).
    assert len(gateway.bodies) == 4
    assert len({body[7:39] for body in gateway.bodies}) == 4  # a fresh context every time


async def test_date_problem_is_retried_at_most_once(aiohttp_server: ServerFactory) -> None:
    def always_date_problem(request: bhttp.Request) -> bhttp.Response:
        epoch = ((b"date", b"Thu, 01 Jan 1970 00:00:00 GMT"),)
        stale = bhttp.Request(b"GET", b"https", b"x", b"/", epoch)
        return date_checking_answer(server_offset=0)(stale)

    gateway = FakeGateway([ring()], answer=always_date_problem)
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        response = await client.request("GET", TARGET)
    assert response.status == 400
    assert len(gateway.bodies) == 2


async def test_plain_400_is_not_retried(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway(
        [ring()], answer=lambda request: bhttp.Response(400, ((b"date", b"x"),), b"bad")
    )
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        assert (await client.request("GET", TARGET)).status == 400
    assert len(gateway.bodies) == 1


# Failures ----------------------------------------------------------------------------------


async def test_relay_unreachable() -> None:
    relay = f"http://127.0.0.1:{free_port()}/"
    config = GatewayKey.generate(1).config
    # Whether the keys come from the relay's mirror or are known already, the relay is down.
    for client in (Client(relay), Client(relay, key_config=config)):
        async with client:
            with pytest.raises(RelayUnreachable, match="could not be reached"):
                await client.request("GET", TARGET)


async def test_key_url_unreachable() -> None:
    keys_url = f"http://127.0.0.1:{free_port()}/keys"
    async with Client(f"http://127.0.0.1:{free_port()}/", keys_url=keys_url) as client:
        with pytest.raises(KeyFetchError, match="could not be fetched"):
            await client.request("GET", TARGET)


async def test_relay_timeout(aiohttp_server: ServerFactory) -> None:
    async def stall(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", stall)
    server = await aiohttp_server(app)
    config = GatewayKey.generate(1).config
    async with Client(str(server.make_url("/")), key_config=config, timeout=0.3) as client:
        with pytest.raises(RelayUnreachable):
            await client.request("GET", TARGET)


@pytest.mark.parametrize("status", [400, 403, 413, 502])
async def test_relay_rejection_is_not_retried(aiohttp_server: ServerFactory, status: int) -> None:
    gateway = FakeGateway([ring()], outer_status=status, outer_body=b"<secret internals>")
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        with pytest.raises(RelayRejected) as raised:
            await client.request("GET", TARGET)
    assert not isinstance(raised.value, KeyRejected)
    assert raised.value.status == status
    assert "secret" not in str(raised.value)
    assert len(gateway.bodies) == 1


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("message/ohttp-res", os.urandom(64)),  # random bytes: authentication fails
        ("message/ohttp-res", b"\x01"),  # shorter than a response nonce
        ("text/html", b"<html>not encapsulated</html>"),
    ],
)
async def test_undecryptable_response(
    aiohttp_server: ServerFactory, content_type: str, body: bytes
) -> None:
    gateway = FakeGateway(
        [ring()], outer_status=200, outer_body=body, outer_content_type=content_type
    )
    relay = await start(aiohttp_server, gateway)
    async with Client(relay) as client:
        with pytest.raises(ResponseDecryptionError):
            await client.request("GET", TARGET)


async def test_malformed_inner_response(aiohttp_server: ServerFactory) -> None:
    keys = ring()

    async def post(request: web.Request) -> web.Response:
        _, sealer = decapsulate_request(keys, await request.read())
        return sealed(sealer, b"\x01\x40\xc8\xff\xff")  # a response whose header length lies

    app = web.Application()
    app.router.add_post("/", post)
    server = await aiohttp_server(app)
    async with Client(str(server.make_url("/")), key_config=keys.keys[0].config) as client:
        with pytest.raises(InvalidInnerResponse):
            await client.request("GET", TARGET)


async def test_oversized_response(aiohttp_server: ServerFactory) -> None:
    gateway = FakeGateway([ring()], answer=lambda request: bhttp.Response(200, (), b"x" * 4096))
    relay = await start(aiohttp_server, gateway)
    async with Client(relay, max_response_bytes=1024) as client:
        with pytest.raises(ResponseDecryptionError):
            await client.request("GET", TARGET)
