"""One body limit, counted the same way on both servers (issue 12, item 14)."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config import GatewayConfig
from ohttp.aio.client import Client
from relay.config import GatewayTarget, RelayConfig
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import free_port, ohttp_process


def test_the_defaults_agree() -> None:
    relay = RelayConfig(gateways=(GatewayTarget("", "http://127.0.0.1/"),))
    assert GatewayConfig().max_body == relay.max_body_bytes == 16 * 1024 * 1024


async def test_a_one_mib_request_passes_with_the_defaults(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    content = os.urandom(1024 * 1024)
    with (
        ohttp_process(gateway_args(key_file, gateway_port, "--backend", "echo"),
                      gateway + "/healthz", tmp_path / "gw.log"),
        ohttp_process(relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz",
                      tmp_path / "relay.log"),
    ):
        async with Client(relay + "/") as client:
            response = await client.request("POST", "https://echo.internal/", content=content)
    assert response.status == 200
