"""Issue 13, finding 6: the keep-alive race between the relay's pool and the gateway.

The rule: the relay's ``--upstream-idle-timeout`` is shorter than the gateway's
``--keepalive-timeout`` by a margin, and the relay drops a pooled connection the gateway has
already closed before writing to it. Real ``ohttp gateway`` and ``ohttp relay`` processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.encapsulation import encapsulate_request
from ohttp.keys import GatewayKey
from relay.config import GatewayTarget, RelayConfig
from relay.upstream import UpstreamPool
from tests.support import LOOPBACK, free_port, ohttp_process

from .conftest import post_ohttp

# The defaults, scaled down 30 times so that a test takes seconds: gateway 30 s, relay 15 s.
SCALE = 30.0


def _default(cls: type, name: str) -> float:
    default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    assert isinstance(default, float)
    return default


def test_defaults_keep_the_relay_pool_shorter_than_the_gateway_keepalive() -> None:
    gateway = GatewayConfig().keepalive_timeout
    relay = _default(RelayConfig, "upstream_idle_timeout")
    assert relay + 10 <= gateway


@pytest.mark.parametrize("relay_idle", [
    _default(RelayConfig, "upstream_idle_timeout") / SCALE,  # the defaults' ratio
    5.0,  # a relay whose pool outlives the gateway's keep-alive: the closed check alone
])
def test_requests_spread_around_the_gateway_keepalive(tmp_path: Path, relay_idle: float) -> None:
    keepalive = GatewayConfig().keepalive_timeout / SCALE
    key = GatewayKey.generate(1)
    save_key_file(tmp_path / "keys.json", [key], force=True)
    gw_port, relay_port = free_port(), free_port()
    gateway_args = [
        "gateway", "--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{gw_port}",
        "--backend", "echo", "--keepalive-timeout", str(keepalive),
    ]  # fmt: skip
    relay_args = [
        "relay", "--listen", f"{LOOPBACK}:{relay_port}",
        "--gateway", f"http://{LOOPBACK}:{gw_port}/.well-known/ohttp-gateway",
        "--upstream-idle-timeout", str(relay_idle),
    ]  # fmt: skip
    inner = bhttp.encode_request(bhttp.Request(b"GET", b"https", b"echo.internal", b"/", (), b""))
    with (
        ohttp_process(gateway_args, f"http://{LOOPBACK}:{gw_port}/healthz", tmp_path / "g.log"),
        ohttp_process(relay_args, f"http://{LOOPBACK}:{relay_port}/healthz", tmp_path / "r.log"),
    ):
        statuses = []
        for factor in (0.0, 0.8, 0.95, 1.05, 1.2, 0.9, 1.1, 1.5):
            time.sleep(keepalive * factor)  # the idle gap is what is tested here
            body, _ = encapsulate_request(key.config, inner)
            statuses.append(post_ohttp(relay_port, "/", body).status)
    assert statuses == [200] * len(statuses)


def test_a_pooled_connection_the_gateway_closed_is_not_reused() -> None:
    """Deterministic: the FIN has arrived, but the event loop has not run since."""
    closed = threading.Event()
    listener = socket.create_server((LOOPBACK, 0))
    port = listener.getsockname()[1]

    def gateway() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        closed.set()

    thread = threading.Thread(target=gateway, daemon=True)
    thread.start()

    async def run() -> None:
        pool = UpstreamPool(
            GatewayTarget("", f"http://{LOOPBACK}:{port}/"), ssl_context=None,
            connect_timeout=2, read_timeout=2, max_idle=4, idle_timeout=60,
        )  # fmt: skip
        response = await pool.request("POST", b"", b"x", chunked=False)
        assert await response.read(100) == b"ok"
        idle = pool._idle[0]  # the pooled connection under test
        assert closed.wait(5)  # blocks the loop: it cannot see the FIN on its own
        assert idle.transport is not None
        select.select([idle.transport.get_extra_info("socket")], [], [], 2)
        assert not idle.closed  # the loop has not noticed yet ...
        assert pool.take_idle() is None  # ... but the pool does
        pool.close()

    try:
        asyncio.run(run())
    finally:
        thread.join(5)
        listener.close()
