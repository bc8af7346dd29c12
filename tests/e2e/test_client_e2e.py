"""The client through a real `ohttp relay` to a real `ohttp gateway` (subprocesses)."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.processing.samples import ENGLISH_CHAT, ENGLISH_DRAFT, FRENCH_CHAT, summarize_payload
from ohttp.aio.client import Client, Exchange, KeyRejected, RelayRejected
from ohttp.keys import GatewayKey, KeyConfig, decode_key_configs
from tests.e2e.conftest import (
    WELL_KNOWN,
    Stack,
    base_url,
    gateway_args,
    relay_args,
    write_key_file,
)
from tests.support import free_port, ohttp_process

PROCESSING = "https://processing.internal"


async def test_summarize_french_and_english(stack: Stack) -> None:
    async with Client(stack.relay_url) as client:
        french = await client.request(
            "POST", PROCESSING + "/v1/summarize", json=summarize_payload(FRENCH_CHAT, 3)
        )
        english = await client.request(
            "POST", PROCESSING + "/v1/summarize", json=summarize_payload(ENGLISH_CHAT, 3)
        )
    for response, language in ((french, "fr"), (english, "en")):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        result = response.json()
        assert result["language"] == language
        assert result["summary"]


async def test_rewrite(stack: Stack) -> None:
    async with Client(stack.relay_url) as client:
        response = await client.request(
            "POST", PROCESSING + "/v1/rewrite", json={"text": ENGLISH_DRAFT, "style": "formal"}
        )
    assert response.status == 200
    result = response.json()
    assert result["changes"]
    assert "the the" not in result["text"].lower()


async def test_echo_backend_sees_headers_and_body(stack: Stack) -> None:
    body = bytes(range(256))
    async with Client(stack.echo_relay_url) as client:
        response = await client.request(
            "PUT",
            "https://echo.internal/items/7?x=1",
            headers=[("X-Custom", "value one"), ("Content-Type", "application/octet-stream")],
            content=body,
        )
    assert response.status == 200
    echoed = response.json()
    assert (echoed["method"], echoed["scheme"], echoed["authority"], echoed["path"]) == (
        "PUT", "https", "echo.internal", "/items/7?x=1"
    )
    headers = {name: value for name, value in echoed["headers"]}
    assert headers["x-custom"] == "value one"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["date"].endswith("GMT")  # RFC 9458 §6.5.1: the client always sends Date
    assert base64.b64decode(echoed["body_base64"]) == body


async def test_inner_errors_are_responses_not_exceptions(stack: Stack) -> None:
    async with Client(stack.relay_url) as client:
        missing = await client.request("GET", PROCESSING + "/no/such/path")
        forbidden = await client.request("GET", "https://not-allowed.example/")
    assert missing.status == 404
    assert forbidden.status == 403


async def test_date_retry_with_a_wrong_clock(stack: Stack) -> None:
    seen: list[Exchange] = []
    async with Client(
        stack.echo_relay_url, clock=lambda: time.time() - 3600, observer=seen.append
    ) as client:
        first = await client.request("GET", "https://echo.internal/first")
        second = await client.request("GET", "https://echo.internal/second")
    assert (first.status, second.status) == (200, 200)
    # Each request: a #date problem, then one retry; the offset is not kept in between.
    assert [exchange.status for exchange in seen] == [200, 200, 200, 200]
    paths = [exchange.inner_request.path for exchange in seen]
    assert paths == [b"/first", b"/first", b"/second", b"/second"]
    sent_date = dict(json.loads(second.content)["headers"])["date"]
    assert abs(_parse_http_date(sent_date) - time.time()) < 60


def _parse_http_date(value: str) -> float:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).timestamp()


def _served_keys(gateway_url: str) -> list[KeyConfig]:
    with urllib.request.urlopen(gateway_url, timeout=5) as response:
        return decode_key_configs(response.read())


async def test_key_refresh_after_rotation(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway_url = base_url(gateway_port) + WELL_KNOWN
    seen: list[Exchange] = []
    with (
        ohttp_process(
            gateway_args(key_file, gateway_port, "--backend", "echo"),
            base_url(gateway_port) + "/healthz",
            tmp_path / "gateway.log",
        ) as gateway,
        ohttp_process(
            relay_args(relay_port, gateway_url),
            base_url(relay_port) + "/healthz",
            tmp_path / "relay.log",
        ),
    ):
        # Keys straight from the gateway (cached for its max-age): the relay's mirror keeps
        # its own cache, which would make the moment the new key shows up there a race.
        async with Client(
            base_url(relay_port) + "/", keys_url=gateway_url, observer=seen.append
        ) as client:
            assert (await client.request("GET", "https://echo.internal/")).status == 200
            new_key = write_key_file(key_file, key_id=2)  # the old key is gone
            os.kill(gateway.pid, signal.SIGHUP)
            for _ in range(200):
                if [config.key_id for config in _served_keys(gateway_url)] == [2]:
                    break
                time.sleep(0.05)
            response = await client.request("GET", "https://echo.internal/")
            assert (await client.key_config()) == new_key.config
    assert response.status == 200
    assert [(exchange.key_id, exchange.status) for exchange in seen] == [
        (1, 200), (1, 422), (2, 200)
    ]


async def test_unknown_key_without_refresh_is_rejected(stack: Stack) -> None:
    stranger = GatewayKey.generate(9).config
    async with Client(stack.relay_url, key_config=stranger) as client:
        with pytest.raises(KeyRejected) as raised:
            await client.request("GET", PROCESSING + "/")
    assert raised.value.status in (400, 422)


async def test_relay_with_its_gateway_down(tmp_path: Path, stack: Stack) -> None:
    relay_port = free_port()
    dead_gateway = base_url(free_port()) + WELL_KNOWN
    key = _served_keys(stack.gateway_url)[0]
    with ohttp_process(
        relay_args(relay_port, dead_gateway),
        base_url(relay_port) + "/healthz",
        tmp_path / "relay.log",
    ):
        async with Client(base_url(relay_port) + "/", key_config=key) as client:
            with pytest.raises(RelayRejected) as raised:
                await client.request("GET", PROCESSING + "/")
    assert raised.value.status in (502, 503, 504)
