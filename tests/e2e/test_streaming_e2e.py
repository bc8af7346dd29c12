"""Chunked OHTTP end to end: the client through a real `ohttp relay` and a real `ohttp gateway`
(subprocesses) to an HTTP origin that runs in this test process on 127.0.0.1.

The origin's ``/gated`` writes one piece and then waits for an event that the test sets only
once the client has that piece: the test can only pass if every hop streams.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from gateway.processing.samples import ENGLISH_CHAT, summarize_payload
from ohttp import bhttp
from ohttp.aio.client import Client, Exchange, KeyRejected, StreamTruncated
from ohttp.chunked import ChunkedRequestEncoder
from ohttp.keys import GatewayKey, KeyConfig, decode_key_configs
from tests.e2e.conftest import (
    WELL_KNOWN,
    Stack,
    base_url,
    gateway_args,
    relay_args,
    write_key_file,
)
from tests.support import LOOPBACK, REPO, free_port, ohttp_process

CHUNKED_REQ = "message/ohttp-chunked-req"
CHUNKED_RES = "message/ohttp-chunked-res"
PROCESSING = "https://processing.internal"
WAIT = 10.0  # bound on every wait in these tests, seconds


@dataclass(frozen=True)
class OriginStack:
    relay_url: str
    origin_port: int
    origin: str  # the inner URL prefix, http://127.0.0.1:PORT


@pytest.fixture(scope="module")
def origin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OriginStack]:
    directory = tmp_path_factory.mktemp("origin-stack")
    key_file = directory / "keys.json"
    write_key_file(key_file, key_id=3)
    origin_port, gateway_port, relay_port = free_port(), free_port(), free_port()
    origin = base_url(origin_port)
    # Piece-by-piece delivery of small pieces: padding would hold pieces under 256 bytes back
    # (tests/e2e/test_padding.py covers streaming with padding).
    backend = ["--backend", origin, "--backend-timeout", "5", "--padding", "none"]
    with (
        ohttp_process(
            gateway_args(key_file, gateway_port, *backend),
            base_url(gateway_port) + "/healthz",
            directory / "gateway.log",
        ),
        ohttp_process(
            relay_args(relay_port, base_url(gateway_port) + WELL_KNOWN),
            base_url(relay_port) + "/healthz",
            directory / "relay.log",
        ),
    ):
        yield OriginStack(base_url(relay_port) + "/", origin_port, origin)


@dataclass
class Origin:
    """The backend origin: what it was asked, and the gate ``/gated`` waits on."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gated", self.gated)
        app.router.add_get("/die", self.die)
        app.router.add_get("/hello", self.hello)
        return app

    async def gated(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first chunk\n")
        async with asyncio.timeout(WAIT):
            await self.release.wait()
        await response.write(b"second chunk\n")
        self.finished = True
        await response.write_eof()
        return response

    async def die(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"partial\n")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()  # the origin dies mid-body
        return response

    async def hello(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(text="hello")


@pytest.fixture
async def origin(origin_stack: OriginStack) -> AsyncIterator[Origin]:
    served = Origin()
    runner = web.AppRunner(served.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, origin_stack.origin_port).start()
    try:
        yield served
    finally:
        served.release.set()
        await runner.cleanup()


async def test_first_chunk_reaches_the_client_before_the_backend_finishes(
    origin_stack: OriginStack, origin: Origin
) -> None:
    async with (
        Client(origin_stack.relay_url, timeout=WAIT) as client,
        client.stream("GET", origin_stack.origin + "/gated") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain"
        chunks = aiter(response)
        async with asyncio.timeout(WAIT):
            first = await anext(chunks)
        assert first == b"first chunk\n"
        assert not origin.finished  # the body is not finished: it waits for us
        origin.release.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"second chunk\n"
    assert origin.finished
    assert response.complete


async def test_backend_dying_mid_stream_is_a_truncation_error(
    origin_stack: OriginStack, origin: Origin
) -> None:
    received = b""
    async with (
        Client(origin_stack.relay_url, timeout=WAIT) as client,
        client.stream("GET", origin_stack.origin + "/die") as response,
    ):
        assert response.status == 200
        with pytest.raises(StreamTruncated):
            async for chunk in response:
                received += chunk
        assert not response.complete
    assert received in (b"", b"partial\n")


async def test_unknown_key_is_rejected_before_streaming(
    origin_stack: OriginStack, origin: Origin
) -> None:
    stranger = GatewayKey.generate(3).config  # right id, wrong key: 422 at the gateway
    async with Client(origin_stack.relay_url, key_config=stranger, timeout=WAIT) as client:
        with pytest.raises(KeyRejected) as caught:
            async with client.stream("GET", origin_stack.origin + "/hello"):
                pass
    assert caught.value.status == 422
    assert origin.requests == 0


async def relay_key(relay_url: str) -> KeyConfig:
    async with (
        aiohttp.ClientSession() as session,
        session.get(relay_url + "ohttp-keys") as response,
    ):
        return decode_key_configs(await response.read())[0]


async def post_raw(relay_url: str, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
    headers = {"Content-Type": CHUNKED_REQ, "Incremental": "?1"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(relay_url, data=body, headers=headers) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


async def test_response_media_type_and_a_bad_chunk(
    origin_stack: OriginStack, origin: Origin
) -> None:
    config = await relay_key(origin_stack.relay_url)
    request = bhttp.Request(
        b"GET", b"http", origin_stack.origin.removeprefix("http://").encode(), b"/hello"
    )
    inner = bhttp.encode_request(request)
    encoder = ChunkedRequestEncoder(config)
    header = encoder.header()
    body = header + encoder.chunk(inner[:10]) + encoder.chunk(inner[10:]) + encoder.final()
    # C8: message/ohttp-chunked-req is answered with message/ohttp-chunked-res.
    status, headers, sealed = await post_raw(origin_stack.relay_url, body)
    assert status == 200
    assert headers["Content-Type"] == CHUNKED_RES
    assert headers.get("Incremental") == "?1"
    decoder = encoder.response_decoder()
    plaintext = b"".join(decoder.feed(sealed)) + b"".join(decoder.close())
    assert bhttp.decode_response(plaintext).content == b"hello"
    # The same request with one bit flipped in its second chunk: plain 422, no backend call.
    encoder = ChunkedRequestEncoder(config)
    first = encoder.header() + encoder.chunk(inner[:10])
    second = bytearray(encoder.chunk(inner[10:]))
    second[5] ^= 0x01
    tampered = first + bytes(second) + encoder.final()
    status, headers, _ = await post_raw(origin_stack.relay_url, tampered)
    assert status == 422
    assert headers["Content-Type"] == "application/problem+json"
    # A request without its final chunk is never complete: 400.
    status, _, _ = await post_raw(origin_stack.relay_url, first)
    assert status == 400
    assert origin.requests == 1


async def test_processing_summary_streams_sentence_by_sentence(stack: Stack) -> None:
    payload = summarize_payload(ENGLISH_CHAT, 3)
    lines: list[dict[str, object]] = []
    async with (
        Client(stack.relay_url, timeout=WAIT) as client,
        client.stream("POST", PROCESSING + "/v1/summarize/stream", json=payload) as response,
    ):
        assert response.status == 200
        buffered = b""
        async for chunk in response:
            buffered += chunk
            *complete, buffered = buffered.split(b"\n")
            lines += [json.loads(line) for line in complete if line]
    assert buffered == b""
    assert len(lines) == 4
    assert all("sentence" in line for line in lines[:3])
    assert lines[-1]["done"] is True


def test_request_cli_stream(stack: Stack, tmp_path: Path) -> None:
    payload = json.dumps(summarize_payload(ENGLISH_CHAT, 2))
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "request", "--stream", "-i", "--relay", stack.relay_url,
         "--json", payload, PROCESSING + "/v1/summarize/stream"],
        capture_output=True, cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\n\n")
    assert head.decode().splitlines()[0] == "HTTP 200 OK"
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == 3
    assert lines[-1]["done"] is True


async def run_cli(*args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ohttp", "request", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout, stderr


async def test_request_cli_stream_cut_short_exits_7(
    origin_stack: OriginStack, origin: Origin
) -> None:
    code, stdout, stderr = await run_cli(
        "--stream", "--relay", origin_stack.relay_url, origin_stack.origin + "/die"
    )
    assert code == 7, stderr
    assert stdout in (b"", b"partial\n")
    assert stderr == b"ohttp request: the response stream ended before its final chunk\n"


async def test_request_cli_stream_inner_error_exits_3(origin_stack: OriginStack) -> None:
    # No origin serves in this test: the gateway answers an inner 502, a complete response.
    code, _, stderr = await run_cli(
        "--stream", "--relay", origin_stack.relay_url, origin_stack.origin + "/hello"
    )
    assert code == 3, stderr
    assert b"502" in stderr


async def test_stream_date_retry_with_a_wrong_clock(stack: Stack) -> None:
    seen: list[Exchange] = []
    async with (
        Client(stack.echo_relay_url, clock=lambda: time.time() - 3600, observer=seen.append)
        as client,
        client.stream("GET", "https://echo.internal/late") as response,
    ):
        body = await response.read()
    # A #date problem (read whole, never handed out), then one retry with a corrected Date.
    assert response.status == 200
    assert [exchange.inner_request.path for exchange in seen] == [b"/late", b"/late"]
    assert json.loads(body)["path"] == "/late"
