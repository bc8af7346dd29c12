"""The gateway application in process: every status of RFC 9458 §5.2 and the key endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from gateway.app import GATEWAY_PATH, GATEWAY_STATE, create_app, reload_keys
from gateway.backends import AsgiBackend, CallableBackend, EchoBackend, Receive, Scope, Send
from gateway.config import GatewayConfig
from ohttp import bhttp
from ohttp.aio.keyfile import add_next_key, load_key_file, save_key_file
from ohttp.errors import PROBLEM_DATE, PROBLEM_OHTTP_KEY
from ohttp.keys import GatewayKey, KeyRing, decode_key_configs
from tests.gateway.conftest import ECHO, MakeGateway, inner_request, problem, seal

# --- key configuration endpoint (RFC 9540) ---------------------------------------------------


async def test_keys_are_served_cacheable_and_identical(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    variants = [
        {},
        {"User-Agent": "a", "Cookie": "id=1", "Accept": "application/ohttp-keys"},
        {"User-Agent": "b", "X-Forwarded-For": "192.0.2.7", "Accept": "*/*"},
    ]
    bodies = set()
    for headers in variants:
        response = await gateway.client.get(GATEWAY_PATH, headers=headers)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/ohttp-keys"
        cache_control = response.headers["Cache-Control"]
        assert cache_control.startswith("max-age=") and int(cache_control[8:]) > 0
        assert "no-store" not in cache_control and "private" not in cache_control
        bodies.add(await response.read())
    assert len(bodies) == 1
    (configs,) = [decode_key_configs(body) for body in bodies]
    assert configs == [gateway.key.config]


async def test_health(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    response = await gateway.client.get("/healthz")
    assert response.status == 200


# --- success ---------------------------------------------------------------------------------


async def test_echo_round_trip(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    request = inner_request(b"/hello?x=1", method=b"POST", content=b"payload", date=True)
    outer, inner = await gateway.exchange(request)
    assert outer.headers["Content-Type"] == "message/ohttp-res"
    assert inner.status == 200
    document = json.loads(inner.content)
    assert document["path"] == "/hello?x=1"
    assert base64.b64decode(document["body_base64"]) == b"payload"
    assert gateway.result_count("ok") == 1


async def test_chunked_transfer_body_is_accepted(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    body, opener = seal(gateway.key.config, inner_request())

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    outer = await gateway.client.post(
        GATEWAY_PATH, data=pieces(), headers={"Content-Type": "message/ohttp-req"}
    )
    assert outer.status == 200
    assert bhttp.decode_response(opener.open(await outer.read())).status == 200


# --- before decapsulation: plain statuses ----------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_get_405(make_gateway: MakeGateway, method: str) -> None:
    gateway = await make_gateway()
    response = await gateway.client.request(method, GATEWAY_PATH, data=b"x")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, POST"
    assert gateway.result_count("bad_method") == 1


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/octet-stream",
        "message/ohttp-req-x",
        "message/ohttp-res",
        "message/ohttp-req; charset=utf-8",
        "text/message/ohttp-req",
    ],
)
async def test_wrong_media_type_gets_415(
    make_gateway: MakeGateway, content_type: str | None
) -> None:
    gateway = await make_gateway()
    body, _ = seal(gateway.key.config, inner_request())
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await gateway.client.post(GATEWAY_PATH, data=body, headers=headers)
    assert response.status == 415
    assert gateway.result_count("bad_media_type") == 1


async def test_media_type_is_case_insensitive(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    body, _ = seal(gateway.key.config, inner_request())
    response = await gateway.post(body, content_type="Message/OHTTP-Req")
    assert response.status == 200


async def test_content_length_over_limit_gets_413(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(max_body=1000)
    response = await gateway.post(b"\x01" * 1001)
    assert response.status == 413
    assert gateway.result_count("too_large") == 1


async def test_streamed_body_over_limit_gets_413(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(max_body=1000)

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"\x01" * 100

    response = await gateway.client.post(
        GATEWAY_PATH, data=pieces(), headers={"Content-Type": "message/ohttp-req"}
    )
    assert response.status == 413


@pytest.mark.parametrize("size", [0, 1, 6])
async def test_short_body_gets_400(make_gateway: MakeGateway, size: int) -> None:
    gateway = await make_gateway()
    body, _ = seal(gateway.key.config, inner_request())
    response = await gateway.post(body[:size])
    assert response.status == 400
    assert gateway.result_count("malformed") == 1


async def test_truncated_enc_or_tag_gets_400(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    body, _ = seal(gateway.key.config, inner_request())
    for size in (7, 7 + 31, 7 + 32, 7 + 32 + 15):
        response = await gateway.post(body[:size])
        assert response.status == 400, size


def _flip(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


async def test_decapsulation_failures_get_one_opaque_422(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    body, _ = seal(gateway.key.config, inner_request())
    header = body[:7]
    candidates = {
        "unknown key id": b"\x09" + body[1:],
        "kem mismatch": header[:1] + b"\x00\x10" + body[3:],
        "kdf not offered": header[:3] + b"\x00\x03" + body[5:],
        "export-only aead": header[:5] + b"\xff\xff" + body[7:],
        "aead zero": header[:5] + b"\x00\x00" + body[7:],
        "zero enc": header + bytes(32) + body[39:],
        "flipped enc": _flip(body, 10),
        "flipped ciphertext": _flip(body, len(body) - 1),
    }
    answers = set()
    for name, candidate in candidates.items():
        response = await gateway.post(candidate)
        assert response.status == 422, name
        answers.add(
            (
                response.headers["Content-Type"],
                await response.read(),
            )
        )
    assert len(answers) == 1, "every decapsulation failure must look the same"
    ((content_type, payload),) = answers
    assert content_type == "application/problem+json"
    assert json.loads(payload)["type"] == PROBLEM_OHTTP_KEY
    assert gateway.result_count("key_unknown") == 5
    assert gateway.result_count("decrypt_failed") == 3


async def test_in_flight_limit_gets_503(make_gateway: MakeGateway) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: bhttp.Request) -> bhttp.Response:
        entered.set()
        await release.wait()
        return bhttp.Response(200)

    gateway = await make_gateway(backend=CallableBackend(slow), max_in_flight=1)
    first = asyncio.ensure_future(gateway.exchange(inner_request()))
    await entered.wait()
    body, _ = seal(gateway.key.config, inner_request())
    response = await gateway.post(body)
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    release.set()
    _, inner = await first
    assert inner.status == 200
    assert gateway.result_count("overloaded") == 1


# --- after decapsulation: encapsulated statuses ----------------------------------------------


async def test_bad_binary_http_gets_inner_400(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    for inner_bytes in (b"\x01", b"\x04", b"\x00\x3f", b"\x00\x05GE"):
        _, inner = await gateway.exchange(inner_bytes)
        assert inner.status == 400
    assert gateway.result_count("malformed") == 4


@pytest.mark.parametrize(
    ("scheme", "authority"),
    [
        (b"https", b"example.com"),
        (b"https", b"169.254.169.254"),
        (b"http", b"169.254.169.254"),
        (b"https", b"127.0.0.1"),
        (b"https", b"localhost"),
        (b"https", b"[::1]"),
        (b"https", b"[fe80::1]:443"),
        (b"https", b"echo.internal@evil.example"),
        (b"https", b"evil.example#@echo.internal"),
        (b"https", b"user@echo.internal"),
        (b"https", b"echo.internal:8443"),
        (b"ftp", b"echo.internal"),
        (b"https", b""),
    ],
)
async def test_forbidden_targets_get_inner_403(
    make_gateway: MakeGateway, scheme: bytes, authority: bytes
) -> None:
    gateway = await make_gateway()
    _, inner = await gateway.exchange(inner_request(scheme=scheme, authority=authority))
    assert inner.status == 403
    assert gateway.result_count("forbidden_target") == 1


@pytest.mark.parametrize(
    ("scheme", "authority"),
    [
        (b"https", b"echo.internal"),
        (b"https", b"ECHO.Internal"),
        (b"https", b"echo.internal:443"),
        (b"http", b"echo.internal:80"),
    ],
)
async def test_allowed_target_forms(
    make_gateway: MakeGateway, scheme: bytes, authority: bytes
) -> None:
    gateway = await make_gateway()
    _, inner = await gateway.exchange(inner_request(scheme=scheme, authority=authority))
    assert inner.status == 200


async def test_host_header_names_the_target_when_authority_is_empty(
    make_gateway: MakeGateway,
) -> None:
    gateway = await make_gateway()
    request = inner_request(authority=b"", headers=((b"host", b"echo.internal"),))
    _, inner = await gateway.exchange(request)
    assert inner.status == 200


async def test_explicit_allow_target(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(allow_target=("api.example:8443", "127.0.0.1"))
    for authority in (b"api.example:8443", b"127.0.0.1"):
        _, inner = await gateway.exchange(inner_request(authority=authority))
        assert inner.status == 200, authority
    _, inner = await gateway.exchange(inner_request(authority=b"api.example"))
    assert inner.status == 403


async def test_explicit_backend_does_not_inherit_the_config_backend_authority(
    aiohttp_client: AiohttpClient, gateway_key: GatewayKey
) -> None:
    async def answer(request: bhttp.Request) -> bhttp.Response:
        return bhttp.Response(200)

    # GatewayConfig's default backend is "processing": processing.internal must not be allowed
    # for an explicit backend that has no authority of its own.
    config = GatewayConfig(allow_target=("api.example",))
    app = create_app(config, keys=KeyRing([gateway_key]), backend=CallableBackend(answer))
    client = await aiohttp_client(app)
    for authority, status in ((b"api.example", 200), (b"processing.internal", 403)):
        body, opener = seal(gateway_key.config, inner_request(authority=authority))
        outer = await client.post(
            GATEWAY_PATH, data=body, headers={"Content-Type": "message/ohttp-req"}
        )
        assert bhttp.decode_response(opener.open(await outer.read())).status == status


def test_an_allowlist_that_allows_nothing_is_refused(gateway_key: GatewayKey) -> None:
    async def answer(request: bhttp.Request) -> bhttp.Response:
        return bhttp.Response(200)

    with pytest.raises(ValueError, match="allow_target"):
        create_app(GatewayConfig(), keys=KeyRing([gateway_key]), backend=CallableBackend(answer))


async def test_an_explicit_backend_with_an_authority_allows_it(make_gateway: MakeGateway) -> None:
    class Named(EchoBackend):
        authority = "named.internal"

    gateway = await make_gateway(backend=Named())
    for authority, status in ((b"named.internal", 200), (ECHO, 403)):
        _, inner = await gateway.exchange(inner_request(authority=authority))
        assert inner.status == status, authority


async def test_connect_and_upgrade_get_inner_403(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    _, inner = await gateway.exchange(inner_request(method=b"CONNECT"))
    assert inner.status == 403
    _, inner = await gateway.exchange(inner_request(headers=((b"upgrade", b"websocket"),)))
    assert inner.status == 403


async def test_expect_continue_gets_inner_417(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    request = inner_request(method=b"POST", headers=((b"expect", b"100-continue"),), content=b"x")
    _, inner = await gateway.exchange(request)
    assert inner.status == 417


def _assert_date_problem(inner: bhttp.Response) -> None:
    assert inner.status == 400
    assert problem(inner)["type"] == PROBLEM_DATE
    headers = dict(inner.headers)
    assert b"date" in headers  # RFC 9458 §6.5.2: the gateway's clock, for the client to retry
    assert headers[b"cache-control"] == b"no-store"


@pytest.mark.parametrize("offset", [-86400, -120, 120, 86400])
async def test_date_outside_window_gets_inner_400(make_gateway: MakeGateway, offset: int) -> None:
    gateway = await make_gateway()
    import time

    date = formatdate(time.time() + offset, usegmt=True).encode()
    _, inner = await gateway.exchange(inner_request(headers=((b"date", date),)))
    _assert_date_problem(inner)
    assert gateway.result_count("date") == 1


async def test_unparseable_date_gets_inner_400(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    _, inner = await gateway.exchange(inner_request(headers=((b"date", b"yesterday"),)))
    _assert_date_problem(inner)


async def test_missing_date_accepted_unless_required(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 200
    strict = await make_gateway(require_date=True)
    _, inner = await strict.exchange(inner_request())
    _assert_date_problem(inner)
    _, inner = await strict.exchange(inner_request(date=True))
    assert inner.status == 200


async def test_replay_inside_window_is_refused(make_gateway: MakeGateway) -> None:
    calls = 0

    async def count(request: bhttp.Request) -> bhttp.Response:
        nonlocal calls
        calls += 1
        return bhttp.Response(200)

    gateway = await make_gateway(backend=CallableBackend(count))
    body, opener = seal(gateway.key.config, inner_request(date=True))
    first = await gateway.post(body)
    assert bhttp.decode_response(opener.open(await first.read())).status == 200
    replayed = await gateway.post(body)
    assert replayed.status == 200  # the refusal is encapsulated: the relay learns nothing
    assert calls == 1, "the replay must not reach the backend"
    assert gateway.result_count("replay") == 1


async def test_backend_failure_gets_inner_502(make_gateway: MakeGateway) -> None:
    async def broken(request: bhttp.Request) -> bhttp.Response:
        raise RuntimeError("secret detail")

    gateway = await make_gateway(backend=CallableBackend(broken))
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 502
    assert b"secret" not in inner.content
    assert gateway.result_count("backend_error") == 1


async def test_raw_backend_exception_gets_inner_502(make_gateway: MakeGateway) -> None:
    class Raw(EchoBackend):
        async def handle(self, request: bhttp.Request) -> bhttp.Response:
            raise KeyError("secret")

    gateway = await make_gateway(backend=Raw())
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 502


async def test_unencodable_backend_response_gets_inner_502(make_gateway: MakeGateway) -> None:
    async def bad(request: bhttp.Request) -> bhttp.Response:
        return bhttp.Response(200, headers=((b"x-bad", b"a\r\nb"),))

    gateway = await make_gateway(backend=CallableBackend(bad))
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 502


async def test_bad_header_from_a_real_asgi_backend_gets_inner_502(
    make_gateway: MakeGateway,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"x-ok", b"1"), (b"bad name", b"secret")]  # not a token: unencodable
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"secret body"})

    gateway = await make_gateway(backend=AsgiBackend(app))
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 502
    assert b"secret" not in inner.content
    assert gateway.result_count("backend_error") == 1


async def test_backend_timeout_gets_inner_504(make_gateway: MakeGateway) -> None:
    async def hang(request: bhttp.Request) -> bhttp.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    gateway = await make_gateway(backend=CallableBackend(hang), backend_timeout=0.05)
    _, inner = await gateway.exchange(inner_request())
    assert inner.status == 504
    assert gateway.result_count("backend_timeout") == 1


async def test_outer_headers_do_not_depend_on_the_inner_response(
    make_gateway: MakeGateway,
) -> None:
    async def by_path(request: bhttp.Request) -> bhttp.Response:
        status = int(request.path.strip(b"/"))
        headers = ((b"set-cookie", b"a=b"), (b"x-debug", b"1"), (b"cache-control", b"private"))
        return bhttp.Response(status, headers=headers, content=b"x" * status)

    gateway = await make_gateway(backend=CallableBackend(by_path))
    seen = set()
    for path in (b"/200", b"/404", b"/500", b"/503"):
        outer, inner = await gateway.exchange(inner_request(path))
        assert inner.status == int(path[1:])
        seen.add(
            tuple(
                (name, value)
                for name, value in outer.headers.items()
                if name not in {"Content-Length", "Date"}
            )
        )
    _, forbidden = await gateway.exchange(inner_request(authority=b"example.com"))
    assert forbidden.status == 403
    assert len(seen) == 1
    (headers,) = seen
    assert {name for name, _ in headers} <= {"Content-Type", "Server"}


# --- keys: rotation, expiry, reload ----------------------------------------------------------


async def test_expired_key_gets_422(make_gateway: MakeGateway) -> None:
    import time

    expired = GatewayKey.generate(7, not_before=0, not_after=int(time.time()) - 1)
    current = GatewayKey.generate(8)
    gateway = await make_gateway(keys=KeyRing([expired, current]))
    body, _ = seal(expired.config, inner_request())
    response = await gateway.post(body)
    assert response.status == 422
    assert decode_key_configs(await (await gateway.client.get(GATEWAY_PATH)).read()) == [
        current.config
    ]


async def test_reload_advertises_new_key_and_old_still_decrypts(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    path = tmp_path / "keys.json"
    save_key_file(path, [GatewayKey.generate(1)])
    old = load_key_file(path).keys[0]
    config = GatewayConfig(keys=path, backend="echo")
    app = create_app(config, backend=EchoBackend())
    client = await aiohttp_client(app)
    body_before, opener_before = seal(old.config, inner_request())  # sealed before rotation

    new = add_next_key(path)
    assert await reload_keys(app)
    advertised = decode_key_configs(await (await client.get(GATEWAY_PATH)).read())
    assert advertised == [new.config]

    for body, opener in ((body_before, opener_before), seal(new.config, inner_request())):
        outer = await client.post(
            GATEWAY_PATH, data=body, headers={"Content-Type": "message/ohttp-req"}
        )
        assert outer.status == 200
        assert bhttp.decode_response(opener.open(await outer.read())).status == 200


async def test_reload_of_a_bad_file_keeps_the_old_keys(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    path = tmp_path / "keys.json"
    key = GatewayKey.generate(1)
    save_key_file(path, [key])
    app = create_app(GatewayConfig(keys=path, backend="echo"), backend=EchoBackend())
    client = await aiohttp_client(app)
    path.write_text("{not json")
    assert not await reload_keys(app)
    advertised = decode_key_configs(await (await client.get(GATEWAY_PATH)).read())
    assert advertised == [key.config]
    assert app[GATEWAY_STATE].metrics.registry.get_sample_value(
        "ohttp_gateway_key_reloads_total", {"outcome": "failed"}
    ) == 1


# --- embedding -------------------------------------------------------------------------------


async def test_mounts_as_a_sub_app(aiohttp_client: AiohttpClient, gateway_key: GatewayKey) -> None:
    started: list[str] = []

    class Tracking(EchoBackend):
        async def start(self) -> None:
            started.append("start")

        async def close(self) -> None:
            started.append("close")

    parent = web.Application()

    async def home(_: web.Request) -> web.Response:
        return web.Response(text="parent")

    parent.router.add_get("/", home)
    gateway_app = create_app(
        GatewayConfig(backend="echo"), keys=KeyRing([gateway_key]), backend=Tracking()
    )
    parent.add_subapp("/ohttp/", gateway_app)
    client = await aiohttp_client(parent)
    assert started == ["start"]
    assert await (await client.get("/")).text() == "parent"
    keys = await client.get("/ohttp" + GATEWAY_PATH)
    assert decode_key_configs(await keys.read()) == [gateway_key.config]
    body, opener = seal(gateway_key.config, inner_request(authority=ECHO))
    outer = await client.post(
        "/ohttp" + GATEWAY_PATH, data=body, headers={"Content-Type": "message/ohttp-req"}
    )
    assert bhttp.decode_response(opener.open(await outer.read())).status == 200
    await client.close()
    assert started == ["start", "close"]


# --- metrics and the allowlist fast path ------------------------------------------------------


async def test_latency_and_in_flight_metrics_are_scraped(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    await gateway.exchange(inner_request())
    registry = gateway.app[GATEWAY_STATE].metrics.registry
    for stage in ("decapsulate", "backend", "total"):
        labels = {"stage": stage}
        assert registry.get_sample_value("ohttp_gateway_latency_seconds_count", labels) == 1
        labels["le"] = "+Inf"
        assert registry.get_sample_value("ohttp_gateway_latency_seconds_bucket", labels) == 1
    assert registry.get_sample_value("ohttp_gateway_in_flight") == 0
    assert gateway.result_count("ok") == 1


@pytest.mark.parametrize(
    ("scheme", "authority", "allowed"),
    [
        (b"https", b"api.example", True),
        (b"https", b"api.example:443", True),
        (b"https", b"API.Example.", True),
        (b"http", b"api.example:80", True),
        (b"https", b"api.example:80", False),
        (b"https", b"v6.example:8443", True),
        (b"http", b"v6.example:8443", True),
        (b"https", b"v6.example", False),
        (b"https", b"[::1]:9000", True),
        (b"https", b"[::1]", False),
        (b"ftp", b"api.example", False),
        (b"https", b"user@api.example", False),
    ],
)
def test_target_policy_fast_path_agrees_with_the_full_check(
    scheme: bytes, authority: bytes, allowed: bool
) -> None:
    policy = GatewayConfig(allow_target=("api.example", "v6.example:8443", "[::1]:9000"))
    rules = policy.target_policy(None)
    assert rules.allows(scheme, authority) is allowed
    assert rules._allows_parsed(scheme, authority) is allowed
