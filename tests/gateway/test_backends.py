"""Backends against real servers on 127.0.0.1, a real unix socket and real ASGI callables."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from gateway.backends import (
    AiohttpAppBackend,
    AsgiBackend,
    BackendError,
    BackendTimeout,
    CallableBackend,
    EchoBackend,
    HttpOriginBackend,
    OriginSettings,
    Receive,
    Scope,
    Send,
    StreamedResponse,
    asgi_scope,
    backend_from_spec,
    default_authority,
    echo_body,
    strip_connection_fields,
)
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.pipeline import GatewayState
from gateway.processing import ProcessingBackend
from ohttp import bhttp
from ohttp.keys import GatewayKey, KeyRing
from tests.support import LOOPBACK, free_port


def inner(
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    authority: bytes = b"example.test",
    headers: bhttp.Fields = (),
    content: bytes = b"",
    scheme: bytes = b"https",
) -> bhttp.Request:
    return bhttp.Request(method, scheme, authority, path, headers, content)


async def drain(streamed: StreamedResponse) -> list[bytes]:
    return [chunk async for chunk in streamed.body]


# --- echo -----------------------------------------------------------------------------------


async def test_echo_answers_the_exact_json() -> None:
    request = inner(
        b"/p?q=1",
        method=b"POST",
        headers=((b"x-a", b"1"), (b"x-latin", b"caf\xe9"), (b"x-a", b"2")),
        content=b"\x00\xffbody",
    )
    response = await EchoBackend().handle(request)
    assert response.status == 200
    assert response.headers == ((b"content-type", b"application/json"),)
    assert response.content == (
        b'{"method":"POST","scheme":"https","authority":"example.test","path":"/p?q=1",'
        b'"headers":[["x-a","1"],["x-latin","caf\\u00e9"],["x-a","2"]],'
        b'"body_base64":"AP9ib2R5"}'
    )
    document = json.loads(response.content)
    assert document["headers"][1][1].encode("latin-1") == b"caf\xe9"  # lossless
    assert base64.b64decode(document["body_base64"]) == b"\x00\xffbody"


_any_bytes = st.binary(max_size=40)


@given(
    method=_any_bytes,
    scheme=_any_bytes,
    authority=_any_bytes,
    path=_any_bytes,
    headers=st.lists(st.tuples(_any_bytes, _any_bytes), max_size=4),
    content=st.binary(max_size=300),
)
def test_echo_body_is_the_compact_json_encoding(
    method: bytes,
    scheme: bytes,
    authority: bytes,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    content: bytes,
) -> None:
    # echo_body assembles the JSON itself; it must be exactly what json.dumps would give.
    request = bhttp.Request(method, scheme, authority, path, tuple(headers), content)
    document = {
        "method": method.decode("latin-1"),
        "scheme": scheme.decode("latin-1"),
        "authority": authority.decode("latin-1"),
        "path": path.decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
        "body_base64": base64.b64encode(content).decode("ascii"),
    }
    assert echo_body(request) == json.dumps(document, separators=(",", ":")).encode("ascii")


async def test_echo_round_trips_through_binary_http() -> None:
    response = await EchoBackend().handle(inner())
    assert bhttp.decode_response(bhttp.encode_response(response)) == response


# --- callable -------------------------------------------------------------------------------


async def test_callable_backend_passes_messages_through() -> None:
    async def answer(request: bhttp.Request) -> bhttp.Response:
        return bhttp.Response(201, ((b"x-path", request.path),), request.content[::-1])

    response = await CallableBackend(answer).handle(inner(b"/x", content=b"abc"))
    assert response == bhttp.Response(201, ((b"x-path", b"/x"),), b"cba")


async def test_callable_backend_maps_failures_to_fixed_errors() -> None:
    secret = "SECRET-123"

    async def broken(request: bhttp.Request) -> bhttp.Response:
        raise KeyError(secret)

    async def slow(request: bhttp.Request) -> bhttp.Response:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    with pytest.raises(BackendError) as failed:
        await CallableBackend(broken).handle(inner())
    assert type(failed.value) is BackendError
    assert secret not in str(failed.value)
    with pytest.raises(BackendTimeout):
        await CallableBackend(slow, timeout=0.05).handle(inner())


# --- header hygiene ---------------------------------------------------------------------------


def test_strip_connection_fields_removes_hop_by_hop_and_listed_fields() -> None:
    headers = (
        (b"Connection", b"close, X-Listed"),
        (b"x-listed", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-connection", b"keep-alive"),
        (b"te", b"trailers"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"X-Kept", b"yes"),
    )
    assert strip_connection_fields(headers) == ((b"x-kept", b"yes"),)


# --- HTTP origin ----------------------------------------------------------------------------


@dataclass
class RawOrigin:
    """A raw asyncio HTTP/1.1 server: records request heads, answers with canned bytes."""

    reply: bytes
    delay: float = 0.0
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.bodies.append(await reader.readexactly(length))
                await asyncio.sleep(self.delay)
                writer.write(self.reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://{LOOPBACK}:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def head_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    lines = head.rstrip(b"\r\n").split(b"\r\n")[1:]
    return [(n.strip().lower(), v.strip()) for n, v in (line.split(b":", 1) for line in lines)]


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Any], Awaitable[Any]]]:
    backends: list[Any] = []

    async def start(backend: Any) -> Any:
        await backend.start()
        backends.append(backend)
        return backend

    yield start
    for backend in backends:
        await backend.close()


async def test_origin_gets_a_clean_request(started: Callable[[Any], Awaitable[Any]]) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    async with origin as url:
        backend = await started(HttpOriginBackend(url + "/base/"))
        request = inner(
            b"/p?q=%20",
            method=b"POST",
            headers=(
                (b"connection", b"x-listed"),
                (b"x-listed", b"gone"),
                (b"keep-alive", b"timeout=1"),
                (b"te", b"trailers"),
                (b"transfer-encoding", b"chunked"),
                (b"upgrade", b"websocket"),
                (b"proxy-connection", b"close"),
                (b"host", b"spoofed.test"),
                (b"content-length", b"999"),
                (b"x-app", b"kept"),
                (b"x-utf8", b"caf\xc3\xa9"),
            ),
            content=b"payload",
        )
        response = await backend.handle(request)
    assert response.status == 200 and response.content == b"ok"
    request_line = origin.heads[0].split(b"\r\n", 1)[0]
    assert request_line == b"POST /base/p?q=%20 HTTP/1.1"
    sent = dict(head_fields(origin.heads[0]))
    assert sent[b"host"] == url.removeprefix("http://").encode()
    assert sent[b"x-app"] == b"kept"
    assert sent[b"x-utf8"] == b"caf\xc3\xa9"  # bytes exact
    assert sent[b"content-length"] == b"7"
    assert origin.bodies == [b"payload"]
    # Nothing hop-by-hop from the inner request, and no client fingerprint added by aiohttp.
    assert not {b"x-listed", b"te", b"transfer-encoding", b"upgrade", b"proxy-connection"} & set(
        sent
    )
    assert not {b"user-agent", b"accept-encoding", b"accept", b"content-type", b"cookie"} & set(
        sent
    )
    assert sent.get(b"keep-alive") is None


async def test_origin_host_can_be_the_inner_authority(
    started: Callable[[Any], Awaitable[Any]],
) -> None:
    origin = RawOrigin(b"HTTP/1.1 204 No Content\r\n\r\n")
    async with origin as url:
        backend = await started(HttpOriginBackend(url, forward_authority=True))
        response = await backend.handle(inner(authority=b"api.example.test"))
    assert response.status == 204
    assert dict(head_fields(origin.heads[0]))[b"host"] == b"api.example.test"


async def test_origin_response_is_returned_raw(started: Callable[[Any], Awaitable[Any]]) -> None:
    gzip_bytes = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not-really-inflated"
    origin = RawOrigin(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
        b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
        b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nSet-Cookie: id=1\r\n\r\n"
        + f"{len(gzip_bytes):x}\r\n".encode()
        + gzip_bytes
        + b"\r\n0\r\n\r\n"
    )
    async with origin as url:
        # A host name, not an IP literal: aiohttp's default jar would keep this cookie.
        backend = await started(HttpOriginBackend(url.replace(LOOPBACK, "localhost")))
        first = await backend.handle(inner(b"/a"))
        await backend.handle(inner(b"/b"))
    assert first.status == 302  # not followed
    assert first.content == gzip_bytes  # not decompressed, de-chunked
    assert first.headers == (
        (b"location", b"http://127.0.0.1:1/elsewhere"),
        (b"content-encoding", b"gzip"),
        (b"set-cookie", b"id=1"),
    )
    assert len(origin.heads) == 2  # the redirect target was never asked
    assert b"cookie" not in dict(head_fields(origin.heads[1]))  # no cookie jar


async def test_origin_read_timeout(started: Callable[[Any], Awaitable[Any]]) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay=5)
    async with origin as url:
        backend = await started(HttpOriginBackend(url, OriginSettings(read_timeout=0.1)))
        with pytest.raises(BackendTimeout):
            await backend.handle(inner())


async def test_origin_connect_timeout_covers_waiting_for_the_pool(
    started: Callable[[Any], Awaitable[Any]],
) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay=0.4)
    async with origin as url:
        settings = OriginSettings(connect_timeout=0.1, read_timeout=10, max_connections=1)
        backend = await started(HttpOriginBackend(url, settings))
        holder = asyncio.create_task(backend.handle(inner()))
        for _ in range(200):  # until the holder's request occupies the only connection
            if origin.heads:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(BackendTimeout):
            await backend.handle(inner())
        assert (await holder).status == 200


def _scraped(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


async def test_origin_pool_use_is_a_gauge_read_at_scrape_time(
    started: Callable[[Any], Awaitable[Any]],
) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay=0.5)
    async with origin as url:
        backend = await started(HttpOriginBackend(url, OriginSettings(max_connections=7)))
        metrics = GatewayMetrics()
        GatewayState.from_config(
            GatewayConfig(backend=url), KeyRing([GatewayKey.generate(1)]), backend, metrics=metrics
        )
        registry = metrics.registry
        in_use = "ohttp_gateway_backend_connections_in_use"
        assert _scraped(registry, in_use) == 0
        assert _scraped(registry, "ohttp_gateway_backend_connections_limit") == 7
        holder = asyncio.create_task(backend.handle(inner()))
        for _ in range(200):  # until the request holds a pool connection at the origin
            if origin.heads:
                break
            await asyncio.sleep(0.01)
        assert _scraped(registry, in_use) == 1
        assert (await holder).status == 200
        assert _scraped(registry, in_use) == 0  # back in the pool, kept alive


async def test_in_process_backends_have_no_pool_gauge() -> None:
    metrics = GatewayMetrics()
    GatewayState.from_config(
        GatewayConfig(), KeyRing([GatewayKey.generate(1)]), EchoBackend(), metrics=metrics
    )
    assert _scraped(metrics.registry, "ohttp_gateway_backend_connections_in_use") is None


async def test_origin_refused_is_backend_error(started: Callable[[Any], Awaitable[Any]]) -> None:
    backend = await started(HttpOriginBackend(f"http://{LOOPBACK}:{free_port()}"))
    with pytest.raises(BackendError) as failed:
        await backend.handle(inner())
    assert type(failed.value) is BackendError
    assert str(failed.value) == "backend failed"


async def test_origin_response_size_is_bounded(started: Callable[[Any], Awaitable[Any]]) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
    async with origin as url:
        backend = await started(HttpOriginBackend(url, OriginSettings(max_response_bytes=99)))
        with pytest.raises(BackendError):
            await backend.handle(inner())


async def test_origin_refuses_targets_that_could_repoint_the_url(
    started: Callable[[Any], Awaitable[Any]],
) -> None:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    async with origin as url:
        backend = await started(HttpOriginBackend(url))
        for path in (b"@evil.test/", b"*", b"/a b", b"/a#frag", b"/caf\xe9"):
            with pytest.raises(BackendError):
                await backend.handle(inner(path))
        with pytest.raises(BackendError):  # not UTF-8: aiohttp could not send it exactly
            await backend.handle(inner(headers=((b"x-latin", b"caf\xe9"),)))
    assert origin.heads == []


async def test_origin_streams_the_body(aiohttp_server: AiohttpServer) -> None:
    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for part in (b"one-", b"two-", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/s", chunks)
    server = await aiohttp_server(app)
    backend = HttpOriginBackend(str(server.make_url("/")))
    await backend.start()
    try:
        streamed = await backend.stream(inner(b"/s"))
        assert streamed.status == 200
        assert b"".join(await drain(streamed)) == b"one-two-three"
        assert b"transfer-encoding" not in dict(streamed.headers)
    finally:
        await backend.close()


def test_origin_url_is_validated() -> None:
    for bad in ("ftp://x", "http://", "http://u:p@host/", "http://host/?q", "http://host/#f"):
        with pytest.raises(ValueError):
            HttpOriginBackend(bad)


# --- in-process aiohttp app -------------------------------------------------------------------


def describing_app() -> web.Application:
    async def describe(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "host": request.host,
                "path": request.path_qs,
                "remote": request.remote,
                "body": body.decode(),
                "ua": request.headers.get("User-Agent"),
            },
            headers={"X-Answer": "1"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", describe)
    return app


async def test_aiohttp_app_backend_serves_in_process(
    started: Callable[[Any], Awaitable[Any]],
) -> None:
    backend = await started(AiohttpAppBackend(describing_app()))
    response = await backend.handle(
        inner(b"/x?y=1", method=b"PUT", authority=b"processing.internal", content=b"hi")
    )
    assert response.status == 200
    assert dict(response.headers)[b"x-answer"] == b"1"
    assert json.loads(response.content) == {
        "host": "processing.internal",
        "path": "/x?y=1",
        "remote": "",
        "body": "hi",
        "ua": None,
    }
    streamed = await backend.stream(inner(b"/s", authority=b"processing.internal"))
    assert json.loads(b"".join(await drain(streamed)))["path"] == "/s"


async def test_aiohttp_app_backend_socket_is_private_and_removed() -> None:
    backend = AiohttpAppBackend(describing_app())
    await backend.start()
    directory = backend._directory
    assert directory is not None
    assert os.stat(directory).st_mode & 0o777 == 0o700
    await backend.close()
    assert not os.path.exists(directory)
    with pytest.raises(BackendError):
        await backend.handle(inner())


async def test_aiohttp_app_backend_maps_app_errors_to_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("SECRET")

    app = web.Application()
    app.router.add_get("/", boom)
    backend = AiohttpAppBackend(app)
    await backend.start()
    try:
        response = await backend.handle(inner())
    finally:
        await backend.close()
    assert response.status == 500  # the app's own answer, passed on
    assert b"SECRET" not in response.content
    records = [r for r in caplog.records if r.name == "gateway.backend_app"]
    assert [(r.getMessage(), r.__dict__["error"]) for r in records] == [
        ("backend_app_error", "RuntimeError")
    ]
    assert "SECRET" not in caplog.text


# --- ASGI -----------------------------------------------------------------------------------

async def scope_echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A pure ASGI app answering with its scope (bytes shown as latin-1) and body."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    shown = {
        key: (value.decode("latin-1") if isinstance(value, bytes) else value)
        for key, value in scope.items()
        if key not in ("headers", "state")
    }
    shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    shown["body"] = body.decode("latin-1")
    await send(
        {"type": "http.response.start", "status": 207, "headers": [(b"Content-Type", b"j")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(shown).encode()})


async def test_asgi_scope_is_complete_and_anonymous() -> None:
    request = inner(
        b"/a%20b/c?x=1&y=%20",
        method=b"POST",
        authority=b"api.example.test:8443",
        headers=((b"host", b"ignored.test"), (b"x-one", b"1"), (b"connection", b"close")),
        content=b"payload",
    )
    response = await AsgiBackend(scope_echo_app).handle(request)
    assert response.status == 207
    assert response.headers == ((b"content-type", b"j"),)
    assert json.loads(response.content) == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/a b/c",
        "raw_path": "/a%20b/c",
        "query_string": "x=1&y=%20",
        "root_path": "",
        "headers": [["host", "api.example.test:8443"], ["x-one", "1"]],
        "client": None,
        "server": ["api.example.test", 8443],
        "extensions": {},
        "body": "payload",
    }


def test_asgi_server_defaults_to_the_scheme_port() -> None:
    assert asgi_scope(inner(authority=b"[::1]"))["server"] == ("::1", 443)
    assert asgi_scope(inner(authority=b"h", scheme=b"http"))["server"] == ("h", 80)


async def test_asgi_streaming_and_full_body_agree() -> None:
    async def chunked(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"", b"bc", b"d"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    backend = AsgiBackend(chunked)
    assert (await backend.handle(inner())).content == b"abcd"
    streamed = await backend.stream(inner())
    assert await drain(streamed) == [b"a", b"bc", b"d"]


async def test_asgi_app_failures_are_backend_errors() -> None:
    async def before_start(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("SECRET")

    async def mid_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("SECRET")

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    for app in (before_start, mid_body, silent):
        with pytest.raises(BackendError) as failed:
            await AsgiBackend(app).handle(inner())
        assert "SECRET" not in str(failed.value)
    streamed = await AsgiBackend(mid_body).stream(inner())
    with pytest.raises(BackendError):
        await drain(streamed)


async def test_asgi_timeout_and_abandoned_stream_cancel_the_app() -> None:
    cancelled: list[str] = []

    async def hangs(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["path"] == "/late":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(scope["path"])
            raise

    backend = AsgiBackend(hangs, timeout=0.05)
    with pytest.raises(BackendTimeout):
        await backend.handle(inner(b"/early"))
    with pytest.raises(BackendTimeout):
        await backend.handle(inner(b"/late"))
    streamed = await backend.stream(inner(b"/late"))
    assert await anext(streamed.body) == b"x"
    await streamed.aclose()
    assert cancelled == ["/early", "/late", "/late"]


async def test_asgi_lifespan_runs_and_shares_state() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                scope["state"]["db"] = "ready"
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["db"].encode()})

    backend = AsgiBackend(app, lifespan=True)
    await backend.start()
    assert (await backend.handle(inner())).content == b"ready"
    await backend.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def test_asgi_lifespan_unsupported_is_tolerated() -> None:
    backend = AsgiBackend(scope_echo_app, lifespan=True)  # asserts type == "http": raises
    await backend.start()
    assert (await backend.handle(inner())).status == 207
    await backend.close()


# --- specs ------------------------------------------------------------------------------------


def test_backend_from_spec_and_default_authority() -> None:
    assert isinstance(backend_from_spec("echo"), EchoBackend)
    assert isinstance(backend_from_spec("http://127.0.0.1:9/x"), HttpOriginBackend)
    assert default_authority("echo") == "echo.internal"
    assert default_authority("processing") == "processing.internal"
    assert default_authority("https://api.example.test:8443/v1") == "api.example.test:8443"
    assert default_authority("http://api.example.test/") == "api.example.test"
    for bad in ("", "ftp://x", "Echo", "/path"):
        with pytest.raises(ValueError, match="backend must be"):
            backend_from_spec(bad)
        with pytest.raises(ValueError, match="backend must be"):
            default_authority(bad)


async def test_processing_spec_serves_the_embedded_app() -> None:
    backend = backend_from_spec("processing")
    assert isinstance(backend, ProcessingBackend)  # in-process: no socket
    conversation = {
        "messages": [
            {"sender": "ana", "text": "The release moves to Friday because tests failed."},
            {"sender": "bo", "text": "I will fix the flaky test tomorrow morning."},
        ],
        "max_sentences": 2,
    }
    content = json.dumps(conversation).encode()

    def post(path: bytes) -> bhttp.Request:
        headers = ((b"content-type", b"application/json"),)
        return inner(path, method=b"POST", authority=b"processing.internal", headers=headers,
                     content=content)

    await backend.start()
    try:
        whole = await backend.handle(post(b"/v1/summarize"))
        streamed = await backend.stream(post(b"/v1/summarize/stream"))
        lines = b"".join(await drain(streamed)).splitlines()
    finally:
        await backend.close()
    assert whole.status == 200
    assert json.loads(whole.content)["summary"]
    assert streamed.status == 200
    assert json.loads(lines[-1])["done"] is True


async def test_aiohttp_app_backend_parse_errors_get_a_fixed_page() -> None:
    """Issue 13, finding 8: the app's server answers a request it cannot parse with a fixed
    text and no ``Server`` field, not aiohttp's page quoting the request's bytes."""
    backend = AiohttpAppBackend(describing_app())
    await backend.start()
    try:
        assert backend._directory is not None
        socket_path = os.path.join(backend._directory, "app.sock")
        reader, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(b"GET /zq7marker\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        await backend.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:200]
    assert body == b"400 Bad Request\n"
    assert b"zq7marker" not in answer and b"\r\nserver:" not in head.lower()
