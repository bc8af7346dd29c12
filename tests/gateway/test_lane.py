"""The gateway's engine lane (``gateway.engine.gateway_lane``) answers exactly as its handler.

Each request is sent twice to one in-process gateway on the serving engine: to the gateway
path, which the lane takes, and to the same path with a query, which it declines and the
handler answers. The outer answers must be the same (their encrypted bodies opened first); a
spy around the real lane counts what it took, so no test passes with the lane never taking
part.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app import GATEWAY_PATH, create_app
from gateway.config import GatewayConfig
from gateway.engine import engine_handler, gateway_lane
from ohttp import bhttp
from ohttp.aio.engine import EngineLimits
from ohttp.aio.serving import serving_engine
from ohttp.chunked import CHUNKED_REQUEST_MEDIA_TYPE
from ohttp.encapsulation import REQUEST_MEDIA_TYPE, ClientResponseOpener
from ohttp.keys import GatewayKey, KeyRing
from tests.engine_support import LaneSpy

from .conftest import inner_request, seal

Reply = tuple[int, dict[str, str], bytes]
TOKEN = "relay-secret"


class LaneGateway:
    def __init__(self, url: str, spy: LaneSpy, key: GatewayKey) -> None:
        self.url, self.spy, self.key = url, spy, key

    async def send(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.post(
            self.url + path, data=body, headers=headers,
        ) as response:
            fields = {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}
            return response.status, fields, await response.read()

    async def both_ways(self, request: bhttp.Request | bytes, headers: dict[str, str],
                        *, lane_takes: bool = True) -> tuple[Reply, Reply]:
        """The answer by the lane, then by the handler. A Binary HTTP ``request`` is sealed
        for each (a sealing is single-use) and each answer opened: answers are sealed anew,
        so only the opened bytes can be compared. Bytes are sent as they are."""
        replies = []
        for path, takes in ((GATEWAY_PATH, lane_takes), (GATEWAY_PATH + "?handler", False)):
            opener: ClientResponseOpener | None = None
            body = request if isinstance(request, bytes) else b""
            if not isinstance(request, bytes):
                body, opener = seal(self.key.config, request)
            taken = self.spy.taken
            status, fields, raw = await self.send(path, body, headers)
            if opener is not None and status == 200:
                raw = bhttp.encode_response(bhttp.decode_response(opener.open(raw)))
            replies.append((status, fields, raw))
            assert self.spy.taken - taken == takes, path
        return replies[0], replies[1]


@pytest.fixture
async def lane_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       request: pytest.FixtureRequest) -> AsyncIterator[LaneGateway]:
    settings: dict[str, Any] = getattr(request, "param", {})
    if settings.pop("tokens", False):
        (tmp_path / "tokens").write_text(TOKEN + "\n")
        settings["relay_token_file"] = tmp_path / "tokens"
    key = GatewayKey.generate(1)
    app = create_app(GatewayConfig(backend="echo", max_body=4096, **settings),
                     keys=KeyRing([key]))
    spy = LaneSpy()
    limits = EngineLimits(8, 5.0, 5.0)
    async with serving_engine(app, engine_handler, ("127.0.0.1", 0), limits,
                              lane=spy.wrap(gateway_lane)) as listening:
        yield LaneGateway(f"http://127.0.0.1:{listening.port}", spy, key)


OHTTP = {"Content-Type": REQUEST_MEDIA_TYPE}


async def test_an_ohttp_request_is_answered_the_same_by_lane_and_handler(
    lane_gateway: LaneGateway,
) -> None:
    inner = inner_request(b"/echo", method=b"POST", content=b"summarise my chats")
    by_lane, by_handler = await lane_gateway.both_ways(inner, OHTTP)
    assert by_lane == by_handler
    assert by_lane[0] == 200 and by_lane[1]["content-type"] == "message/ohttp-res"
    echoed = json.loads(bhttp.decode_response(by_lane[2]).content)
    assert base64.b64decode(echoed["body_base64"]) == b"summarise my chats"
    assert lane_gateway.spy.taken == 1


@pytest.mark.parametrize(("body", "headers"), [
    (b"x" * 100, {"Content-Type": "text/plain"}),  # 415 before decapsulation
    (b"x" * 100, {**OHTTP, "Content-Encoding": "gzip"}),  # a content coding: 415
    (b"x" * 5000, OHTTP),  # over max_body: 413
    (b"\x07" + b"x" * 99, OHTTP),  # an unknown key: 422
    (b"\x01" + b"x" * 99, OHTTP),  # the key, but nothing that decrypts: 400
])
async def test_a_refused_request_is_answered_the_same_by_lane_and_handler(
    lane_gateway: LaneGateway, body: bytes, headers: dict[str, str],
) -> None:
    by_lane, by_handler = await lane_gateway.both_ways(body, headers)
    assert by_lane == by_handler
    assert 400 <= by_lane[0] < 500


@pytest.mark.parametrize(("method", "status"), [("PUT", 405), ("GET", 200)])
async def test_another_method_with_a_body_is_answered_the_same_by_lane_and_handler(
    lane_gateway: LaneGateway, method: str, status: int,
) -> None:
    replies = []
    for path in (GATEWAY_PATH, GATEWAY_PATH + "?handler"):
        async with aiohttp.ClientSession() as session, session.request(
            method, lane_gateway.url + path, data=b"x" * 10,
        ) as response:
            fields = {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}
            replies.append((response.status, fields, await response.read()))
    assert replies[0] == replies[1] and replies[0][0] == status  # GET: the key configurations
    assert lane_gateway.spy.taken == 1


async def test_an_inner_error_is_answered_the_same_by_lane_and_handler(
    lane_gateway: LaneGateway,
) -> None:
    inner = inner_request(b"/", authority=b"elsewhere.example")  # not an allowed target
    by_lane, by_handler = await lane_gateway.both_ways(inner, OHTTP)
    assert by_lane == by_handler
    assert by_lane[0] == 200  # the inner answer carries the refusal (RFC 9458 §5.2)
    assert bhttp.decode_response(by_lane[2]).status == 403


async def test_the_chunked_media_type_is_left_to_the_handler(lane_gateway: LaneGateway) -> None:
    # It may stream; the lane does not take it, and the handler's answer is its usual one.
    reply = await lane_gateway.send(GATEWAY_PATH, b"\x01" + b"x" * 99,
                                    {"Content-Type": CHUNKED_REQUEST_MEDIA_TYPE})
    assert lane_gateway.spy.taken == 0
    assert 400 <= reply[0] < 500


@pytest.mark.parametrize("lane_gateway", [{"tokens": True}], indirect=True)
async def test_with_relay_tokens_the_lane_takes_only_an_accepted_one(
    lane_gateway: LaneGateway,
) -> None:
    inner = inner_request(b"/echo")
    refused = await lane_gateway.both_ways(inner, OHTTP, lane_takes=False)
    assert refused[0] == refused[1] and refused[0][0] == 401
    accepted = {**OHTTP, "Authorization": f"Bearer {TOKEN}"}
    by_lane, by_handler = await lane_gateway.both_ways(inner, accepted)
    assert by_lane == by_handler and by_lane[0] == 200


@pytest.mark.parametrize("lane_gateway", [{"max_in_flight": 1}], indirect=True)
async def test_the_lane_gives_back_the_in_flight_slot(lane_gateway: LaneGateway) -> None:
    inner = inner_request(b"/echo")
    for _ in range(3):  # one slot: a slot kept by the lane would refuse the second with 503
        body, opener = seal(lane_gateway.key.config, inner)
        status, _, raw = await lane_gateway.send(GATEWAY_PATH, body, OHTTP)
        assert status == 200 and bhttp.decode_response(opener.open(raw)).status == 200
    assert lane_gateway.spy.taken == 3
