"""The processing service called in-process gives the aiohttp app's answers, byte for byte."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.backends import StreamingBackend, backend_from_spec
from gateway.processing import MAX_BODY_BYTES, ProcessingBackend, create_app
from gateway.processing.samples import ENGLISH_CHAT, summarize_payload
from ohttp import bhttp

Client = TestClient[web.Request, web.Application]
SUMMARY = json.dumps(summarize_payload(ENGLISH_CHAT, 3)).encode()
REWRITE = json.dumps({"text": "hi team, the the report is done", "style": "formal"}).encode()

CASES = [
    (b"POST", b"/v1/summarize", SUMMARY),
    (b"POST", b"/v1/summarize?x=1", SUMMARY),
    (b"POST", b"/v1/summarize/stream", SUMMARY),
    (b"POST", b"/v1/rewrite", REWRITE),
    (b"POST", b"/v1/rewrite", b'{"text": 3}'),
    (b"POST", b"/v1/rewrite", b"not json"),
    (b"POST", b"/v1/rewrite", b"[" * 100_000),
    (b"POST", b"/v1/rewrite", b"x" * (MAX_BODY_BYTES + 1)),
    (b"GET", b"/v1/summarize", b""),
    (b"PUT", b"/v1/rewrite", REWRITE),
    (b"GET", b"/", b""),
    (b"POST", b"/v1/summarize/", SUMMARY),
]
COMPARED = ("content-type", "cache-control", "allow")


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_app())


def request(method: bytes, path: bytes, content: bytes) -> bhttp.Request:
    headers = ((b"content-type", b"application/json"),)
    return bhttp.Request(method, b"https", b"processing.internal", path, headers, content)


@pytest.mark.parametrize(("method", "path", "content"), CASES)
async def test_same_answer_as_the_app(
    client: Client, method: bytes, path: bytes, content: bytes
) -> None:
    served = await client.request(method.decode(), path.decode(), data=content)
    expected = (served.status, await served.read(), [served.headers.get(n) for n in COMPARED])
    backend = ProcessingBackend()
    for response in (await backend.handle(request(method, path, content)),
                     await collected(backend, request(method, path, content))):
        fields = {name.decode(): value.decode() for name, value in response.headers}
        assert (response.status, response.content, [fields.get(n) for n in COMPARED]) == expected


async def collected(backend: ProcessingBackend, inner: bhttp.Request) -> bhttp.Response:
    streamed = await backend.stream(inner)
    content = b"".join([piece async for piece in streamed.body])
    return bhttp.Response(streamed.status, streamed.headers, content)


async def test_the_stream_comes_line_by_line() -> None:
    streamed = await ProcessingBackend().stream(request(b"POST", b"/v1/summarize/stream", SUMMARY))
    pieces = [piece async for piece in streamed.body]
    assert len(pieces) == 4  # three sentences, then the done line
    assert all(piece.endswith(b"\n") and piece.count(b"\n") == 1 for piece in pieces)
    assert json.loads(pieces[-1])["done"] is True


def test_the_command_line_backend_is_in_process() -> None:
    backend = backend_from_spec("processing")
    assert isinstance(backend, ProcessingBackend) and isinstance(backend, StreamingBackend)
    assert backend.authority == "processing.internal"
