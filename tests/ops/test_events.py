"""Failure events with closed reason codes, and the log level (issue 12, item 6), from real
`ohttp relay` and `ohttp gateway` processes."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ohttp.aio.client import Client, RelayRejected
from ohttp.keys import GatewayKey
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import LOOPBACK, free_port, ohttp_process


def events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "message/ohttp-req"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_relay_events_unreachable_timeout_and_key_fetch(tmp_path: Path) -> None:
    silent = socket.socket()  # accepts (the kernel's backlog) and never answers
    silent.bind((LOOPBACK, 0))
    silent.listen()
    silent_port, dead_port, relay_port = silent.getsockname()[1], free_port(), free_port()
    args = [*relay_args(relay_port, "slow=" + base_url(silent_port) + WELL_KNOWN,
                        "dead=" + base_url(dead_port) + WELL_KNOWN),
            "--upstream-timeout", "0.5", "--log-level", "warning"]
    relay = base_url(relay_port)
    log = tmp_path / "relay.log"
    with silent, ohttp_process(args, relay + "/healthz", log):
        assert post(relay + "/slow", b"x" * 40) == 504
        assert post(relay + "/dead", b"x" * 40) == 502
        assert post(relay + "/dead", b"x" * 40) == 502  # within the second: suppressed
    seen = events(log)
    failures = [(e["event"], e["error"]) for e in seen if e["event"] == "upstream_failed"]
    assert ("upstream_failed", "timeout") in failures
    assert failures.count(("upstream_failed", "unreachable")) == 1
    assert any(e["event"] == "keys_fetch_failed" for e in seen)  # the mirror's own fetches
    assert all(e["level"] != "info" for e in seen)  # --log-level warning
    assert all(set(e) <= {"time", "level", "logger", "event", "error", "suppressed", "worker"}
               for e in seen if e["event"] in ("upstream_failed", "keys_fetch_failed"))
    assert str(dead_port) not in log.read_text().replace(f'"port": {relay_port}', "")


async def test_gateway_logs_an_unreachable_origin(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key: GatewayKey = write_key_file(key_file, key_id=1)
    gateway_port, relay_port, origin_port = free_port(), free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    log = tmp_path / "gw.log"
    with (
        ohttp_process(gateway_args(key_file, gateway_port, "--backend",
                                   f"http://{LOOPBACK}:{origin_port}"), gateway + "/healthz", log),
        ohttp_process(relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz",
                      tmp_path / "relay.log"),
    ):
        async with Client(relay + "/", key_config=key.config) as client:
            response = await client.request("GET", f"http://{LOOPBACK}:{origin_port}/secret-path")
            assert response.status == 502  # an inner 502: the origin is down
    (failed,) = [e for e in events(log) if e["event"] == "backend_failed"]
    assert failed["error"] == "failed" and failed["worker"] == 0
    assert "secret-path" not in log.read_text()


async def test_client_sees_502_when_the_gateway_is_down(tmp_path: Path) -> None:
    relay_port = free_port()
    relay = base_url(relay_port)
    with ohttp_process(relay_args(relay_port, base_url(free_port()) + WELL_KNOWN),
                       relay + "/healthz", tmp_path / "relay.log"):
        async with Client(relay + "/", key_config=GatewayKey.generate(1).config) as client:
            with pytest.raises(RelayRejected) as rejected:
                await client.request("GET", "https://echo.internal/")
            assert rejected.value.status == 502
    assert any(e["event"] == "upstream_failed" for e in events(tmp_path / "relay.log"))
