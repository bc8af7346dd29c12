"""The gateway's chunked OHTTP path (draft-ietf-ohai-chunked-ohttp-08), in process.

Requests are built with the core's ChunkedRequestEncoder (or the real Client), sent to a real
aiohttp gateway on 127.0.0.1, and the answers decoded chunk by chunk.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from gateway.app import GATEWAY_STATE
from gateway.asgi import OhttpMiddleware
from gateway.backends import AiohttpAppBackend, AsgiBackend
from ohttp import bhttp
from ohttp.aio.client import Client, StreamTruncated
from ohttp.chunked import ChunkedRequestEncoder, ChunkedResponseDecoder, ChunkLimits
from ohttp.keys import GatewayKey, KeyConfig, KeyRing
from tests.gateway.conftest import ECHO, Gateway, MakeGateway, inner_request, problem
from tests.gateway.test_asgi import call

CHUNKED_REQ = "message/ohttp-chunked-req"
CHUNKED_RES = "message/ohttp-chunked-res"
STREAM = "stream.internal"


def chunked_request(
    config: KeyConfig, request: bhttp.Request, *, split: int = 0
) -> tuple[bytes, ChunkedResponseDecoder]:
    """A whole chunked request; with ``split``, the content goes in non-final chunks of that
    size and the final chunk is empty."""
    encoder = ChunkedRequestEncoder(config)
    inner = bhttp.encode_request(request)
    if split:
        header = encoder.header()
        parts = [encoder.chunk(inner[i : i + split]) for i in range(0, len(inner), split)]
        body = header + b"".join(parts) + encoder.final()
    else:
        body = encoder.header() + encoder.final(inner)
    return body, encoder.response_decoder()


def open_response(decoder: ChunkedResponseDecoder, body: bytes) -> bhttp.Response:
    plaintext = b"".join(decoder.feed(body)) + b"".join(decoder.close())
    assert decoder.complete
    return bhttp.decode_response(plaintext)


async def post(gateway: Gateway, body: bytes) -> Any:
    return await gateway.client.post(
        gateway.path, data=body, headers={"Content-Type": CHUNKED_REQ, "Incremental": "?1"}
    )


class StreamingApp:
    """An in-process backend app: ``/gated`` sends one piece, then waits for ``release``;
    ``/die`` sends one piece and breaks the connection; ``/big`` sends ``size`` bytes."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.finished = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gated", self.gated)
        app.router.add_get("/die", self.die)
        return app

    async def gated(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first ")
        async with asyncio.timeout(10):
            await self.release.wait()
        await response.write(b"second")
        self.finished = True
        await response.write_eof()
        return response

    async def die(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()  # the backend dies mid-stream
        return response


@pytest.fixture
async def streaming(make_gateway: MakeGateway) -> tuple[Gateway, StreamingApp]:
    backend_app = StreamingApp()
    backend = AiohttpAppBackend(backend_app.app(), authority=STREAM)
    # Incremental delivery piece by piece: padding would hold pieces under 256 bytes back
    # (tests/e2e/test_padding.py covers streaming with padding).
    return await make_gateway(backend, backend_timeout=5.0, padding="none"), backend_app


def client_for(gateway: Gateway, **options: Any) -> Client:
    url = str(gateway.client.make_url(gateway.path))
    return Client(url, key_config=gateway.key.config, **options)


async def test_non_streaming_backend_answers_in_one_final_chunk(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    body, decoder = chunked_request(gateway.key.config, inner_request(b"/x", content=b"hi"))
    outer = await post(gateway, body)
    assert outer.status == 200
    # C8: a chunked request is answered with the chunked media type, marked Incremental.
    assert outer.headers["Content-Type"] == CHUNKED_RES
    assert outer.headers["Incremental"] == "?1"
    response = open_response(decoder, await outer.read())
    assert response.status == 200
    assert b'"path":"/x"' in response.content
    assert gateway.result_count("ok") == 1


async def test_request_split_into_many_chunks(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    request = inner_request(b"/split", method=b"POST", content=b"z" * 5000)
    body, decoder = chunked_request(gateway.key.config, request, split=700)
    response = open_response(decoder, await (await post(gateway, body)).read())
    assert response.status == 200
    assert b'"path":"/split"' in response.content


async def test_first_chunk_arrives_before_the_backend_finishes(
    streaming: tuple[Gateway, StreamingApp],
) -> None:
    gateway, backend_app = streaming
    async with (
        client_for(gateway) as client,
        client.stream("GET", f"https://{STREAM}/gated") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain"
        chunks = aiter(response)
        async with asyncio.timeout(5):
            first = await anext(chunks)
        assert first == b"first "
        assert not backend_app.finished  # the backend is still waiting for us
        backend_app.release.set()
        rest = [chunk async for chunk in chunks]
        assert b"".join(rest) == b"second"
        assert response.complete
    state = gateway.app[GATEWAY_STATE]
    assert state.in_flight == 0
    assert gateway.result_count("ok") == 1


async def test_backend_dying_mid_stream_is_truncation(
    streaming: tuple[Gateway, StreamingApp],
) -> None:
    gateway, _ = streaming
    received = []
    async with (
        client_for(gateway) as client,
        client.stream("GET", f"https://{STREAM}/die") as response,
    ):
        assert response.status == 200
        with pytest.raises(StreamTruncated):
            async for chunk in response:
                received.append(chunk)
        assert not response.complete
    assert b"".join(received) in (b"", b"partial")
    assert gateway.app[GATEWAY_STATE].in_flight == 0
    assert gateway.result_count("backend_error") == 1


async def test_raw_truncated_response_has_no_final_chunk(
    streaming: tuple[Gateway, StreamingApp],
) -> None:
    gateway, _ = streaming
    request = inner_request(b"/die", authority=STREAM.encode())
    body, decoder = chunked_request(gateway.key.config, request)
    outer = await post(gateway, body)
    assert outer.status == 200
    received = b""
    with pytest.raises(Exception):  # noqa: B017 (aiohttp payload error: connection cut)
        async for piece in outer.content.iter_any():
            received += piece
    decoder.feed(received)
    with pytest.raises(Exception, match="truncated"):
        decoder.close()
    assert not decoder.complete


async def test_errors_before_the_response_are_plain(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    request = inner_request(b"/")
    # Unknown key id: 422 with the #ohttp-key problem, as for message/ohttp-req.
    other = GatewayKey.generate(9)
    body, _ = chunked_request(other.config, request)
    outer = await post(gateway, body)
    assert outer.status == 422
    assert outer.headers["Content-Type"] == "application/problem+json"
    # A tampered byte in a non-final chunk: decryption fails, still before any answer.
    body, _ = chunked_request(gateway.key.config, request, split=10)
    tampered = bytearray(body)
    tampered[7 + 32 + 3] ^= 1
    assert (await post(gateway, bytes(tampered))).status == 422
    # No final chunk: the request is never complete, never handed to the backend.
    body, _ = chunked_request(gateway.key.config, request, split=10)
    cut = body[: 7 + 32 + 1 + 10 + 16]
    assert (await post(gateway, cut)).status == 400
    assert (await post(gateway, b"")).status == 400
    assert gateway.result_count("ok") == 0


async def test_body_over_the_limit_is_413(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(max_body=4096)
    request = inner_request(b"/", method=b"POST", content=b"x" * 5000)
    body, _ = chunked_request(gateway.key.config, request)
    assert (await post(gateway, body)).status == 413


async def test_chunk_over_max_chunk_is_rejected(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(max_body=1 << 20)
    request = inner_request(b"/", method=b"POST", content=b"x" * 20000)
    # A sender that ignores the 2^14 default: one 20 KB chunk, over the gateway's max_chunk.
    big = ChunkedRequestEncoder(gateway.key.config, limits=ChunkLimits(max_chunk=1 << 15))
    body = big.header() + big.chunk(bhttp.encode_request(request)) + big.final()
    assert (await post(gateway, body)).status == 400
    # The same chunks are accepted once the gateway allows them.
    roomy = await make_gateway(max_chunk=1 << 15)
    big = ChunkedRequestEncoder(roomy.key.config, limits=ChunkLimits(max_chunk=1 << 15))
    body = big.header() + big.chunk(bhttp.encode_request(request)) + big.final()
    assert (await post(roomy, body)).status == 200


async def test_inner_errors_are_chunked_responses(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    request = inner_request(b"/", authority=b"elsewhere.example")
    body, decoder = chunked_request(gateway.key.config, request)
    outer = await post(gateway, body)
    assert outer.status == 200
    assert outer.headers["Content-Type"] == CHUNKED_RES
    response = open_response(decoder, await outer.read())
    assert response.status == 403
    assert problem(response)["status"] == 403
    assert gateway.result_count("forbidden_target") == 1


async def test_non_chunked_requests_are_unchanged(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    outer, response = await gateway.exchange(inner_request(b"/plain"))
    assert outer.headers["Content-Type"] == "message/ohttp-res"
    assert "Incremental" not in outer.headers
    assert response.status == 200


async def gated_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    await send({"type": "http.response.body", "body": b"two", "more_body": False})


async def test_asgi_middleware_streams_chunked_responses() -> None:
    key = GatewayKey.generate(1)
    middleware = OhttpMiddleware(gated_asgi, KeyRing([key]), targets=[ECHO.decode()])
    assert isinstance(middleware.state.backend, AsgiBackend)
    body, decoder = chunked_request(key.config, inner_request(b"/"))
    headers = [(b"content-type", CHUNKED_REQ.encode())]
    status, out_headers, sealed = await call(
        middleware, "POST", "/.well-known/ohttp-gateway", headers=headers, body=body
    )
    assert status == 200
    assert out_headers[b"content-type"] == CHUNKED_RES.encode()
    assert out_headers[b"incremental"] == b"?1"
    assert open_response(decoder, sealed).content == b"onetwo"

