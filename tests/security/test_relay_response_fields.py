"""Issue 13, finding 7: the relay passes gateway response fields only with valid values.

A real ``ohttp relay`` process in front of a scripted gateway (a real aiohttp server) that
answers with the header fields the request body names; the unit table checks each validator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aiohttp import web

from relay.headers import passed_fields, valid_cache_control, valid_retry_after
from tests.support import LOOPBACK, free_port, ohttp_process

from .conftest import ThreadedServer, post_ohttp

GOOD = [
    ("Cache-Control", "no-store"),
    ("Cache-Control", 'max-age=60, private="x", no-cache'),
    ("Retry-After", "120"),
    ("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("Incremental", "?1"),
]
BAD = [
    ("Cache-Control", "max-age=60,, "),
    ("Cache-Control", "max-age=(60)"),
    ("Cache-Control", 'private="unterminated'),
    ("Cache-Control", "x" * 2000),
    ("Retry-After", "-1"),
    ("Retry-After", "soon"),
    ("Retry-After", "Sun, 06 Nov 99999 08:49:37 GMT"),
    ("Retry-After", "1e9"),
    ("Incremental", "?2"),
    ("Incremental", "true"),
    ("Incremental", "1"),
]


@pytest.mark.parametrize(("name", "value"), GOOD)
def test_valid_values_pass(name: str, value: str) -> None:
    assert passed_fields([(name.lower(), value)]) == [(name.lower(), value)]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_invalid_values_are_dropped(name: str, value: str) -> None:
    assert passed_fields([(name.lower(), value)]) == []


def test_validators_edge_cases() -> None:
    assert valid_cache_control("a, b=c, d=\"e, f\"")
    assert not valid_cache_control("")
    assert valid_retry_after("0") and not valid_retry_after("")


async def _scripted(request: web.Request) -> web.Response:
    fields = json.loads(await request.read())
    headers = [("Content-Type", "message/ohttp-res"), *map(tuple, fields)]
    return web.Response(body=b"sealed", headers=headers)


@pytest.fixture(scope="module")
def relay_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp_path = tmp_path_factory.mktemp("relay-fields")
    app = web.Application()
    app.router.add_post("/gw", _scripted)
    gateway = ThreadedServer(app, free_port())
    gateway.start()
    port = free_port()
    args = ["relay", "--listen", f"{LOOPBACK}:{port}",
            "--gateway", f"http://{LOOPBACK}:{gateway.port}/gw"]
    try:
        with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "relay.log"):
            yield port
    finally:
        gateway.stop()


@pytest.mark.parametrize("field", GOOD + BAD)
def test_relay_passes_only_valid_values(relay_port: int, field: tuple[str, str]) -> None:
    reply = post_ohttp(relay_port, "/", json.dumps([field]).encode())
    assert reply.status == 200
    passed = reply.header(field[0])
    assert passed == (field[1] if field in GOOD else None)
