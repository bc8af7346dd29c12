"""Gateway test helpers: keys, an in-process gateway, and a client built on the core."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient

from gateway.app import GATEWAY_PATH, GATEWAY_STATE, create_app
from gateway.backends import Backend, EchoBackend, backend_authority
from gateway.config import GatewayConfig
from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.encapsulation import ClientResponseOpener, encapsulate_request
from ohttp.keys import GatewayKey, KeyConfig, KeyRing
from tests.support import REPO, RunningProcess, ohttp_process, stop_process, wait_http_ok

ECHO = b"echo.internal"


def inner_request(
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    authority: bytes = ECHO,
    scheme: bytes = b"https",
    headers: bhttp.Fields = (),
    content: bytes = b"",
    date: bool = False,
) -> bhttp.Request:
    if date:
        headers = ((b"date", formatdate(usegmt=True).encode()), *headers)
    return bhttp.Request(method, scheme, authority, path, headers, content)


def seal(config: KeyConfig, request: bhttp.Request | bytes) -> tuple[bytes, ClientResponseOpener]:
    """Encapsulate a Binary HTTP request (or raw inner bytes) as a client would."""
    data = request if isinstance(request, bytes) else bhttp.encode_request(request)
    return encapsulate_request(config, data)


@dataclass
class Gateway:
    """An in-process gateway and a client for it."""

    client: TestClient[web.Request, Any]
    key: GatewayKey
    app: web.Application
    path: str = GATEWAY_PATH

    async def post(self, body: bytes, content_type: str = "message/ohttp-req") -> Any:
        return await self.client.post(
            self.path, data=body, headers={"Content-Type": content_type}
        )

    async def exchange(self, request: bhttp.Request | bytes) -> tuple[Any, bhttp.Response]:
        """Send an encapsulated request; the outer response and the decrypted inner one."""
        body, opener = seal(self.key.config, request)
        outer = await self.post(body)
        assert outer.status == 200, await outer.text()
        return outer, bhttp.decode_response(opener.open(await outer.read()))

    def result_count(self, result: str) -> float:
        registry = self.app[GATEWAY_STATE].metrics.registry
        value = registry.get_sample_value("ohttp_gateway_requests_total", {"result": result})
        return value or 0.0


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def gateway_key() -> GatewayKey:
    return GatewayKey.generate(1)


@pytest.fixture
def make_gateway(aiohttp_client: AiohttpClient, gateway_key: GatewayKey) -> MakeGateway:
    async def make(
        backend: Backend | None = None, keys: KeyRing | None = None, **settings: Any
    ) -> Gateway:
        if backend is None:
            backend = EchoBackend()
        elif backend_authority(backend) is None:
            # A backend without its own authority: let the tests' requests reach it.
            settings.setdefault("allow_target", (ECHO.decode(),))
        config = GatewayConfig(backend="echo", **settings)
        app = create_app(
            config, keys=keys if keys is not None else KeyRing([gateway_key]), backend=backend
        )
        # As served by gateway._serve: aiohttp's access log records addresses and User-Agent.
        server = TestServer(app)
        await server.start_server(access_log=None)
        client: TestClient[web.Request, Any] = await aiohttp_client(server)
        return Gateway(client, gateway_key, app)

    return make


def problem(response: bhttp.Response) -> dict[str, Any]:
    assert dict(response.headers)[b"content-type"] == b"application/problem+json"
    document: dict[str, Any] = json.loads(response.content)
    return document


# --- real gateway processes ------------------------------------------------------------------

_CLI_MODULES = ("ohttp.cli.keys", "gateway.cli", "relay.cli", "ohttp.cli.request")


def _ohttp_cli_complete() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in _CLI_MODULES)


@contextlib.contextmanager
def gateway_process(
    args: Sequence[str], health_url: str, log_path: Path
) -> Iterator[RunningProcess]:
    """``ohttp gateway ARGS`` as a real subprocess (``python -m gateway`` until every
    ``ohttp`` subcommand module exists)."""
    if _ohttp_cli_complete():
        with ohttp_process(["gateway", *args], health_url, log_path) as running:
            yield running
        return
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    try:
        wait_http_ok(health_url, process)
        yield RunningProcess(process, log_path)
    finally:
        stop_process(process)


def http(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; (status, headers, body) for any status."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def ohttp_exchange(
    url: str, config: KeyConfig, request: bhttp.Request, context: ssl.SSLContext | None = None
) -> bhttp.Response:
    body, opener = seal(config, request)
    status, headers, payload = http(url, body, {"Content-Type": "message/ohttp-req"}, context)
    assert status == 200, (status, payload)
    assert headers["Content-Type"] == "message/ohttp-res"
    return bhttp.decode_response(opener.open(payload))


def write_keys(path: Path, *keys: GatewayKey) -> GatewayKey:
    key = keys[0] if keys else GatewayKey.generate(1)
    save_key_file(path, [key, *keys[1:]])
    return key
