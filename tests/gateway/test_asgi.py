"""Embedding: the ASGI middleware around a real pure-ASGI app, and the aiohttp sub-app mount.

The ASGI callable is driven directly with real scope/receive/send (no ASGI server is
installed); the aiohttp mount runs on a real server on 127.0.0.1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.asgi import OhttpMiddleware
from gateway.backends import AiohttpAppBackend, AsgiApp, EchoBackend, Message, Receive, Scope, Send
from gateway.config import GatewayConfig
from ohttp import bhttp
from ohttp.encapsulation import ClientResponseOpener, encapsulate_request
from ohttp.keys import GatewayKey, KeyRing

GATEWAY = "/.well-known/ohttp-gateway"
AUTHORITY = b"api.example.test"
SECRET = "SECRET-7f3a"

@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing([GatewayKey.generate(7)])


async def app_under_test(scope: Scope, receive: Receive, send: Send) -> None:
    """A small pure-ASGI app: /status/N answers N, anything else describes the request."""
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].startswith("/status/"):
        status = int(scope["path"].removeprefix("/status/"))
        headers = [(b"x-status", str(status).encode()), (b"set-cookie", b"a=b")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"s" * status})
        return
    described = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "client": scope["client"],
        "host": dict(scope["headers"]).get(b"host", b"").decode(),
        "body": body.decode(),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(described).encode()})


async def call(
    app: AsgiApp,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    chunks: int = 1,
    disconnect: bool = False,
) -> tuple[int | None, dict[bytes, bytes], bytes]:
    """One HTTP exchange with an ASGI app, as an ASGI server performs it."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"front.example.test"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8443),
    }
    step = max(1, -(-len(body) // chunks))
    pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    if disconnect:
        incoming = [{"type": "http.request", "body": body[:3], "more_body": True}]
        incoming.append({"type": "http.disconnect"})
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if not sent:
        return None, {}, b""
    start, bodies = sent[0], sent[1:]
    assert start["type"] == "http.response.start"
    return (
        start["status"],
        {bytes(n): bytes(v) for n, v in start.get("headers", [])},
        b"".join(m.get("body", b"") for m in bodies),
    )


def encapsulated(
    ring: KeyRing, request: bhttp.Request
) -> tuple[bytes, ClientResponseOpener]:
    config = ring.current()[0].config
    return encapsulate_request(config, bhttp.encode_request(request))


def inner_get(path: bytes, authority: bytes = AUTHORITY, **kw: Any) -> bhttp.Request:
    return bhttp.Request(b"GET", b"https", authority, path, **kw)


OHTTP_REQ_TYPE = "message/ohttp-req"
OHTTP_REQ = [(b"content-type", OHTTP_REQ_TYPE.encode())]


async def oblivious(
    app: Any, ring: KeyRing, request: bhttp.Request, chunks: int = 1
) -> tuple[int | None, dict[bytes, bytes], bhttp.Response]:
    body, opener = encapsulated(ring, request)
    headers = [*OHTTP_REQ, (b"content-length", str(len(body)).encode())]
    status, headers_out, sealed = await call(
        app, "POST", GATEWAY, headers=headers, body=body, chunks=chunks
    )
    assert status == 200, status
    return status, headers_out, bhttp.decode_response(opener.open(sealed))


# --- ASGI middleware ------------------------------------------------------------------------


async def test_inner_request_reaches_the_wrapped_app_anonymously(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    request = bhttp.Request(
        b"POST", b"https", AUTHORITY, b"/things?x=1", ((b"x-a", b"1"),), SECRET.encode()
    )
    _, outer, response = await oblivious(app, ring, request, chunks=3)
    assert outer[b"content-type"] == b"message/ohttp-res"
    assert sorted(outer) == [b"content-length", b"content-type"]
    assert response.status == 200
    assert json.loads(response.content) == {
        "method": "POST",
        "path": "/things",
        "query": "x=1",
        "client": None,
        "host": "api.example.test",
        "body": SECRET,
    }


async def test_everything_else_passes_through_untouched(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    direct = await call(app_under_test, "POST", "/x", body=b"plain")
    wrapped = await call(app, "POST", "/x", body=b"plain")
    assert wrapped == direct
    assert json.loads(wrapped[2])["client"] == ["127.0.0.1", 50000]
    # A near miss of the gateway path is the app's, not the gateway's.
    assert (await call(app, "GET", GATEWAY + "/"))[0] == 200
    assert json.loads((await call(app, "GET", GATEWAY + "/"))[2])["path"] == GATEWAY + "/"
    sent: list[Message] = []
    incoming = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_key_configurations_are_served(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    status, headers, body = await call(app, "GET", GATEWAY)
    assert status == 200
    assert body == ring.encode_public()
    assert headers[b"content-type"] == b"application/ohttp-keys"
    assert headers[b"cache-control"].startswith(b"max-age=")
    head = await call(app, "HEAD", GATEWAY)
    assert head[0] == 200 and head[2] == b""


async def test_outer_errors_are_plain(ring: KeyRing) -> None:
    app = OhttpMiddleware(
        app_under_test, ring, targets=["api.example.test"], config=GatewayConfig(max_body=100)
    )
    assert (await call(app, "PUT", GATEWAY))[0] == 405
    wrong_type = [(b"content-type", b"message/ohttp-req; x=1")]
    assert (await call(app, "POST", GATEWAY, headers=wrong_type, body=b"x" * 50))[0] == 415
    gzipped = [*OHTTP_REQ, (b"content-encoding", b"identity"), (b"content-encoding", b"gzip")]
    coded = await call(app, "POST", GATEWAY, headers=gzipped, body=b"x" * 50)
    assert (coded[0], coded[1][b"accept-encoding"]) == (415, b"identity")  # RFC 9110 §8.4
    te = [*OHTTP_REQ, (b"transfer-encoding", b"gzip, chunked")]
    refused = await call(app, "POST", GATEWAY, headers=te, body=b"x" * 50)
    assert (refused[0], refused[1][b"connection"]) == (501, b"close")  # RFC 9112 §6.1
    too_big = [*OHTTP_REQ, (b"content-length", b"101")]
    assert (await call(app, "POST", GATEWAY, headers=too_big, body=b"x" * 101))[0] == 413
    unsized = await call(app, "POST", GATEWAY, headers=OHTTP_REQ, body=b"x" * 150, chunks=3)
    assert unsized[0] == 413  # no Content-Length: enforced while reading
    body, _ = encapsulated(ring, inner_get(b"/"))
    unknown_key = bytes([body[0] ^ 0xFF]) + body[1:]
    status, headers, problem = await call(
        app, "POST", GATEWAY, headers=OHTTP_REQ, body=unknown_key
    )
    assert status == 422
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(problem)["type"].endswith("#ohttp-key")
    assert (await call(app, "POST", GATEWAY, headers=OHTTP_REQ, body=b""))[0] == 400


async def test_policy_answers_are_encapsulated(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    for request in (
        inner_get(b"/", authority=b"other.example.test"),
        inner_get(b"/", authority=b"169.254.169.254"),
        inner_get(b"/", headers=((b"upgrade", b"websocket"),)),
    ):
        _, _, response = await oblivious(app, ring, request)
        assert response.status == 403
    expecting = inner_get(b"/", headers=((b"expect", b"100-continue"),))
    _, _, response = await oblivious(app, ring, expecting)
    assert response.status == 417


async def test_outer_headers_do_not_depend_on_the_inner_response(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    seen = []
    for status in (200, 404, 500):
        _, outer, response = await oblivious(app, ring, inner_get(f"/status/{status}".encode()))
        assert response.status == status
        assert dict(response.headers)[b"set-cookie"] == b"a=b"
        seen.append(sorted(name for name in outer))
    assert seen[0] == seen[1] == seen[2] == [b"content-length", b"content-type"]


async def test_wrapped_app_failure_is_an_encapsulated_502(ring: KeyRing) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError(SECRET)

    app = OhttpMiddleware(broken, ring, targets=["api.example.test"])
    _, _, response = await oblivious(app, ring, inner_get(b"/"))
    assert response.status == 502
    assert SECRET.encode() not in response.content


async def test_disconnect_mid_body_sends_nothing(ring: KeyRing) -> None:
    app = OhttpMiddleware(app_under_test, ring, targets=["api.example.test"])
    body, _ = encapsulated(ring, inner_get(b"/"))
    status, _, _ = await call(
        app, "POST", GATEWAY, headers=OHTTP_REQ, body=body, disconnect=True
    )
    assert status is None
    assert app.state.in_flight == 0


def test_middleware_needs_targets(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="targets"):
        OhttpMiddleware(app_under_test, ring, targets=[])


# --- aiohttp sub-app ------------------------------------------------------------------------


async def test_gateway_mounts_as_an_aiohttp_subapp(
    ring: KeyRing, aiohttp_client: AiohttpClient
) -> None:
    async def home(request: web.Request) -> web.Response:
        return web.Response(text="home")

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.host} {request.remote!r}")

    api = web.Application()  # served obliviously, in-process: needs the sub-app's cleanup_ctx
    api.router.add_get("/hello", hello)
    host = web.Application()
    host.router.add_get("/", home)
    config = GatewayConfig(backend="echo", allow_target=("api.example.test",))
    host.add_subapp("/ohttp", create_app(config, keys=ring, backend=AiohttpAppBackend(api)))
    client = await aiohttp_client(host)

    assert await (await client.get("/")).text() == "home"
    keys = await client.get("/ohttp" + GATEWAY)
    assert keys.status == 200 and await keys.read() == ring.encode_public()

    body, opener = encapsulated(ring, inner_get(b"/hello"))
    answer = await client.post(
        "/ohttp" + GATEWAY, data=body, headers={"Content-Type": OHTTP_REQ_TYPE}
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "message/ohttp-res"
    response = bhttp.decode_response(opener.open(await answer.read()))
    assert (response.status, response.content) == (200, b"hello api.example.test ''")
    assert (await client.get(GATEWAY)).status == 404  # only under the prefix


async def test_middleware_and_aiohttp_gateway_agree(
    ring: KeyRing, aiohttp_client: AiohttpClient
) -> None:
    config = GatewayConfig(backend="echo")
    client = await aiohttp_client(create_app(config, keys=ring, backend=EchoBackend()))
    middleware = OhttpMiddleware(
        app_under_test, ring, targets=["echo.internal"], config=config, backend=EchoBackend()
    )
    for authority, expected in ((b"echo.internal", 200), (AUTHORITY, 403)):
        request = inner_get(b"/same", authority=authority, headers=((b"x-a", b"1"),))
        body, opener = encapsulated(ring, request)
        answer = await client.post(GATEWAY, data=body, headers={"Content-Type": OHTTP_REQ_TYPE})
        from_aiohttp = bhttp.decode_response(opener.open(await answer.read()))
        _, _, from_asgi = await oblivious(middleware, ring, request)
        assert from_aiohttp == from_asgi
        assert from_asgi.status == expected
    for method in ("GET", "PUT"):
        status, headers, asgi_body = await call(middleware, method, GATEWAY)
        aio = await client.request(method, GATEWAY)
        assert (aio.status, await aio.read()) == (status, asgi_body)
        assert aio.headers["Content-Type"] == headers[b"content-type"].decode()
