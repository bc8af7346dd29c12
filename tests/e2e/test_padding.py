"""Padding at a recording relay: what the relay sees of the sizes, and what the backend gets.

Client -> recorder (a small aiohttp relay on 127.0.0.1 that records every body it carries) ->
gateway (in process, real HTTP) -> origin (a real HTTP server that records what it receives).
With X25519, HKDF-SHA256 and AES-128-GCM, a one-shot request is the inner message plus
7 + 32 + 16 bytes (RFC 9458 §4.3) and a response plus 16 + 16 (§4.4).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import GatewayConfig, SettingsError, load_config
from ohttp.aio.client import Client
from ohttp.keys import GatewayKey, KeyRing
from ohttp.padding import padded_size
from ohttp.varint import decode_varint
from tests.e2e import conftest as e2e
from tests.support import REPO

REQUEST_OVERHEAD = 7 + 32 + 16  # header, X25519 enc, AES-128-GCM tag
RESPONSE_OVERHEAD = 16 + 16  # response nonce max(Nn, Nk), tag
TAG = 16
CLASSES = {padded_size(n) for n in range(1 << 16)}
GATED_FIRST = b"f" * 600  # fills a class with the head: streams before the backend finishes
STREAM_PIECES = [b"token " * 5, b"x" * 100, b"y" * 3000, b"z" * 20_000, b"!"]


@dataclass
class Recorded:
    requests: list[bytes] = field(default_factory=list)  # bodies the relay carried up
    responses: list[bytes] = field(default_factory=list)  # and down
    origin_bodies: list[bytes] = field(default_factory=list)  # what the backend received
    origin_lengths: list[str | None] = field(default_factory=list)  # its Content-Length
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets /gated finish


def origin_app(recorded: Recorded) -> web.Application:
    """``POST /echo/N`` records the body and answers N bytes; ``GET /stream`` streams."""

    async def echo(request: web.Request) -> web.Response:
        recorded.origin_bodies.append(await request.read())
        recorded.origin_lengths.append(request.headers.get("Content-Length"))
        size = int(request.match_info["size"])
        return web.Response(body=b"r" * size, headers={"Server": "origin"})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Server": "origin"})
        await response.prepare(request)
        for piece in STREAM_PIECES:
            await response.write(piece)
            await asyncio.sleep(0)  # let each piece go out on its own where it can
        await response.write_eof()
        return response

    async def gated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Server": "origin"})
        await response.prepare(request)
        await response.write(GATED_FIRST)
        async with asyncio.timeout(10):
            await recorded.release.wait()
        await response.write(b"second")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/echo/{size}", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/gated", gated)
    return app


def recorder_app(gateway_url: str, recorded: Recorded) -> web.Application:
    """A relay that forwards each POST to the gateway, streams the answer back as it comes,
    and records both bodies."""

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded.requests.append(body)
        headers = {"Content-Type": request.content_type}
        async with (
            aiohttp.ClientSession() as session,
            session.post(gateway_url, data=body, headers=headers) as answer,
        ):
            response = web.StreamResponse(status=answer.status)
            response.content_type = answer.content_type
            await response.prepare(request)
            payload = b""
            async for piece in answer.content.iter_any():
                payload += piece
                await response.write(piece)
            recorded.responses.append(payload)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_post("/", forward)
    return app


@dataclass
class Stack:
    client: Callable[[str], Client]  # padding -> a client through the recorder
    origin: str  # base URL of the origin, for inner requests
    recorded: Recorded


MakeStack = Callable[[str], Awaitable[Stack]]


@pytest.fixture
async def make_stack() -> Any:
    servers: list[TestServer] = []

    async def serve(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    async def make(gateway_padding: str) -> Stack:
        recorded = Recorded()
        origin = await serve(origin_app(recorded))
        key = GatewayKey.generate(1)
        config = GatewayConfig(backend=origin, padding=gateway_padding)
        gateway = await serve(create_app(config, keys=KeyRing([key])))
        relay = await serve(recorder_app(gateway + "/.well-known/ohttp-gateway", recorded))

        def client(padding: str) -> Client:
            return Client(relay + "/", key_config=key.config, padding=padding)

        return Stack(client, origin, recorded)

    yield make
    for server in servers:
        await server.close()


async def test_requests_and_responses_land_on_their_classes(make_stack: MakeStack) -> None:
    stack = await make_stack("classes")
    async with stack.client("classes") as client:
        for size in (10, 300, 1000):
            response = await client.request(
                "POST", f"{stack.origin}/echo/{size}", content=b"q" * size
            )
            assert response.content == b"r" * size
    requests = [len(body) - REQUEST_OVERHEAD for body in stack.recorded.requests]
    # 10, 300 and 1,000 bytes of content, plus about 80 bytes of Binary HTTP framing, control
    # data and Date: the 256, 512 and 1280 byte classes.
    assert requests == [256, 512, 1280]
    responses = [len(body) - RESPONSE_OVERHEAD for body in stack.recorded.responses]
    assert responses == [256, 512, 1280]


async def test_the_backend_never_sees_the_padding(make_stack: MakeStack) -> None:
    stack = await make_stack("classes")
    async with stack.client("classes") as client:
        for size in (10, 300, 1000):
            await client.request("POST", f"{stack.origin}/echo/1", content=b"q" * size)
    assert stack.recorded.origin_bodies == [b"q" * 10, b"q" * 300, b"q" * 1000]
    assert stack.recorded.origin_lengths == ["10", "300", "1000"]


async def test_padding_none_switches_it_off(make_stack: MakeStack) -> None:
    stack = await make_stack("none")
    async with stack.client("none") as client:
        for size in (10, 300, 1000):
            await client.request("POST", f"{stack.origin}/echo/{size}", content=b"q" * size)
    requests = [len(body) - REQUEST_OVERHEAD for body in stack.recorded.requests]
    responses = [len(body) - RESPONSE_OVERHEAD for body in stack.recorded.responses]
    # Unpadded, every byte of content shows: the sizes differ as the contents do (plus a
    # byte or two of length prefixes and of the path and Content-Length digits).
    for sizes in (requests, responses):
        steps = [b - a for a, b in pairwise(sizes)]
        assert 290 <= steps[0] <= 293 and 700 <= steps[1] <= 703
    assert not {*requests, *responses} & CLASSES
    assert stack.recorded.origin_bodies == [b"q" * 10, b"q" * 300, b"q" * 1000]


def chunk_sizes(body: bytes, header: int) -> tuple[list[int], int]:
    """The plaintext sizes of the non-final chunks and of the final one, as the relay can
    read them from the framing (draft-ietf-ohai-chunked-ohttp-08 §4, §5)."""
    sizes: list[int] = []
    offset = header
    while True:
        length, offset = decode_varint(body, offset)
        if length == 0:
            return sizes, len(body) - offset - TAG
        sizes.append(length - TAG)
        offset += length


async def test_chunked_chunks_land_on_classes(make_stack: MakeStack) -> None:
    stack = await make_stack("classes")
    async with (
        stack.client("classes") as client,
        client.stream("GET", f"{stack.origin}/stream") as response,
    ):
        received = b"".join([chunk async for chunk in response])
    assert received == b"".join(STREAM_PIECES)
    # The request is one final chunk after the header (7 + 32 bytes).
    assert chunk_sizes(stack.recorded.requests[0], 7 + 32) == ([], 256)
    chunks, final = chunk_sizes(stack.recorded.responses[0], 16)
    assert chunks and all(size in CLASSES and size <= 16128 for size in chunks)
    assert final in CLASSES


async def test_chunked_padding_none_sends_pieces_unpadded(make_stack: MakeStack) -> None:
    stack = await make_stack("none")
    async with (
        stack.client("none") as client,
        client.stream("GET", f"{stack.origin}/stream") as response,
    ):
        received = b"".join([chunk async for chunk in response])
    assert received == b"".join(STREAM_PIECES)
    request_chunks, request_final = chunk_sizes(stack.recorded.requests[0], 7 + 32)
    assert request_chunks == [] and request_final not in CLASSES
    _, final = chunk_sizes(stack.recorded.responses[0], 16)
    assert final == 2  # the content terminator and an empty trailer section, nothing more


def ciphertext_bytes(*args: str) -> int:
    """``ohttp request -v ...`` as a subprocess: the request size the relay saw."""
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "request", "-v", *args],
        capture_output=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = re.search(r"\[(\d+) bytes of ciphertext\]", result.stderr.decode())
    assert found is not None
    return int(found.group(1))


def test_request_command_pads_unless_told_not_to(stack: e2e.Stack) -> None:
    target = ("--relay", stack.echo_relay_url, "-d", "q" * 10, "https://echo.internal/p")
    assert ciphertext_bytes(*target) == 256 + REQUEST_OVERHEAD
    assert ciphertext_bytes("--padding", "classes", *target) == 256 + REQUEST_OVERHEAD
    unpadded = ciphertext_bytes("--padding", "none", *target) - REQUEST_OVERHEAD
    assert unpadded < 256 and unpadded not in CLASSES


def test_gateway_padding_setting() -> None:
    assert GatewayConfig().padding == "classes"
    environ = {"OHTTP_GATEWAY_PADDING": "none"}
    assert load_config({}, environ=environ).padding == "none"
    assert load_config({"padding": "classes"}, environ=environ).padding == "classes"
    with pytest.raises(SettingsError, match="padding"):
        GatewayConfig(padding="random")


async def test_padded_stream_still_streams_what_fills_a_class(make_stack: MakeStack) -> None:
    stack = await make_stack("classes")
    async with (
        stack.client("classes") as client,
        client.stream("GET", f"{stack.origin}/gated") as response,
    ):
        chunks = aiter(response)
        received = b""
        async with asyncio.timeout(10):
            while len(received) < 256:  # the first class-sized chunks, before the release
                received += await anext(chunks)
        assert GATED_FIRST.startswith(received)
        stack.recorded.release.set()
        received += b"".join([chunk async for chunk in chunks])
    assert received == GATED_FIRST + b"second"
    chunks_seen, final = chunk_sizes(stack.recorded.responses[0], 16)
    assert all(size in CLASSES for size in [*chunks_seen, final])


async def test_large_chunked_request_is_cut_into_classes(make_stack: MakeStack) -> None:
    stack = await make_stack("classes")
    async with (
        stack.client("classes") as client,
        client.stream("POST", f"{stack.origin}/echo/20000", content=b"q" * 20_000) as response,
    ):
        received = b"".join([chunk async for chunk in response])
    assert received == b"r" * 20_000
    assert stack.recorded.origin_bodies == [b"q" * 20_000]
    # About 20 KB of Binary HTTP: the 32256 class, as two chunks of the 16128 class.
    assert chunk_sizes(stack.recorded.requests[0], 7 + 32) == ([16128], 16128)
    chunks, final = chunk_sizes(stack.recorded.responses[0], 16)
    assert all(size in CLASSES for size in [*chunks, final])


async def test_padding_keeps_large_requests_under_the_default_body_limit(
    make_stack: MakeStack,
) -> None:
    """600 KB pads to 1 MiB less 16 KiB: with its overhead still under a 1 MiB max_body."""
    stack = await make_stack("classes")
    async with stack.client("classes") as client:
        response = await client.request("POST", f"{stack.origin}/echo/1", content=b"q" * 600_000)
    assert response.status == 200
    assert len(stack.recorded.requests[0]) == 1032192 + REQUEST_OVERHEAD
    assert len(stack.recorded.requests[0]) < 1 << 20


async def test_outcomes_look_alike(make_stack: MakeStack) -> None:
    """Checklist A7.50: a refused request (inner 403) and a short answer are one size."""
    stack = await make_stack("classes")
    async with stack.client("classes") as client:
        refused = await client.request("GET", "https://elsewhere.example/")
        answered = await client.request("POST", f"{stack.origin}/echo/10", content=b"q")
    assert (refused.status, answered.status) == (403, 200)
    sizes = {len(body) for body in stack.recorded.responses}
    assert sizes == {256 + RESPONSE_OVERHEAD}
    assert {len(body) for body in stack.recorded.requests} == {256 + REQUEST_OVERHEAD}
