"""The relay's engine lane (``relay.engine.relay_lane``) answers exactly as its handler does.

Each gateway behaviour is met twice on the same in-process relay: by ``POST /``, which the lane
takes (a pooled gateway connection is made ready first), and by ``POST /?handler``, which it
declines (a query) and the handler answers. The two answers must be the same. A spy around the
real lane counts what it took, so a test cannot pass with the lane never taking part.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

import relay.forward
import relay.serve
from relay.app import create_app
from relay.engine import relay_lane
from relay.serve import serve
from relay.state import STATE_KEY
from tests.engine_support import LaneSpy
from tests.support import established_to

from .conftest import RecordingGateway, relay_config

REQ = "message/ohttp-req"
Reply = tuple[int, dict[str, str], bytes]


@pytest.fixture
async def spied_relay(gateway: RecordingGateway, monkeypatch: pytest.MonkeyPatch,
                      ) -> AsyncIterator[tuple[str, LaneSpy]]:
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    config = relay_config(gateway.url, header_timeout=2.0, body_timeout=2.0,
                          upstream_timeout=0.5)
    async with serve(config) as listening:
        yield f"http://127.0.0.1:{listening.port}", spy


async def send(url: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.post(
        url, data=body, headers={"Content-Type": REQ, **(headers or {})},
    ) as response:
        fields = {k: v for k, v in response.headers.items() if k.lower() != "date"}
        return response.status, fields, await response.read()


async def both_ways(url: str, spy: LaneSpy, gateway: RecordingGateway, mode: str,
                    body: bytes = b"request") -> tuple[Reply, Reply]:
    """The answer by the lane, then by the handler, to the gateway in ``mode``."""
    answers = []
    answer = gateway.status, gateway.content_type, gateway.extra_headers
    for path, lane_takes in (("/", 1), ("/?handler", 0)):
        gateway.mode, gateway.status, gateway.content_type = "echo", 200, "message/ohttp-res"
        gateway.extra_headers = {}
        assert (await send(url + "/", b"warm"))[0] == 200  # leaves a pooled connection
        taken = spy.taken
        gateway.mode = mode
        gateway.status, gateway.content_type, gateway.extra_headers = answer
        answers.append(await send(url + path, body))
        assert spy.taken - taken == lane_takes
    return answers[0], answers[1]


@pytest.mark.parametrize(("status", "content_type", "extra"), [
    (200, "message/ohttp-res", {}),
    (200, "message/ohttp-chunked-res", {"Incremental": "?1"}),
    (404, "text/plain", {"Set-Cookie": "gw=1"}),
    (422, "application/problem+json", {}),
    (500, "text/html", {}),
    (302, "text/html", {"Location": "http://127.0.0.1:1/"}),
    (200, "text/html", {}),
    (503, "text/plain", {"Retry-After": "7"}),
    (503, "text/plain", {"Retry-After": "soon"}),
])
async def test_a_gateway_answer_reaches_the_client_the_same_by_lane_and_handler(
    spied_relay: tuple[str, LaneSpy], gateway: RecordingGateway, status: int,
    content_type: str, extra: dict[str, str],
) -> None:
    url, spy = spied_relay
    gateway.status, gateway.content_type, gateway.extra_headers = status, content_type, extra
    by_lane, by_handler = await both_ways(url, spy, gateway, "fixed")
    assert by_lane == by_handler
    assert by_lane[0] in (200, 404, 422, 502, 503)


@pytest.mark.parametrize("mode", ["echo", "large", "slow", "hang", "drop"])
async def test_a_gateway_behaviour_is_answered_the_same_by_lane_and_handler(
    spied_relay: tuple[str, LaneSpy], gateway: RecordingGateway, mode: str,
) -> None:
    url, spy = spied_relay
    gateway.release.clear()
    if mode == "slow":  # a streamed answer, its second piece after a moment
        asyncio.get_running_loop().call_later(0.1, gateway.release.set)
    by_lane, by_handler = await both_ways(url, spy, gateway, mode, b"q" * 2000)
    assert by_lane == by_handler
    expected = {"echo": 200, "large": 200, "slow": 200, "hang": 504, "drop": 502}[mode]
    assert by_lane[0] == expected
    if mode == "large":
        assert len(by_lane[2]) == 100_000  # over the small-answer bound: streamed both ways


async def test_the_lane_keeps_the_in_flight_count(spied_relay: tuple[str, LaneSpy],
                                                   gateway: RecordingGateway) -> None:
    url, spy = spied_relay
    gateway.mode = "echo"
    replies = [await send(url + "/", b"x%d" % i) for i in range(5)]
    assert [reply[2] for reply in replies] == [b"x%d" % i for i in range(5)]
    assert spy.taken == 5  # the first too: the key mirror's fetch left a pooled connection
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        assert response.status == 200
    gateway.mode = "hang"
    gateway.release.clear()
    assert (await send(url + "/", b"y"))[0] == 504  # taken by the lane, timed out: released
    gateway.mode = "echo"
    assert (await send(url + "/", b"z"))[2] == b"z"


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"}, {"Content-Encoding": "gzip"},
])
async def test_a_request_the_handler_refuses_is_not_taken(
    spied_relay: tuple[str, LaneSpy], gateway: RecordingGateway, headers: dict[str, str],
) -> None:
    url, spy = spied_relay
    gateway.mode = "echo"
    await send(url + "/", b"warm")
    taken = spy.taken
    status, _, _ = await send(url + "/", b"x", headers)
    assert status == 415
    assert spy.taken == taken and len(gateway.posts) == 1


@pytest.mark.parametrize("mode", ["echo", "large", "422"])
async def test_a_rate_limited_relay_counts_each_lane_request_once(
    gateway: RecordingGateway, monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    """With a rate limit the lane takes every POST it sees, counts it, then forwards it by
    callbacks or hands it to the handler's code (no pooled connection yet, a large or a 422
    answer): each counted once, so the limit's third request is the one refused."""
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    gateway.mode = {"echo": "echo", "large": "large", "422": "fixed"}[mode]
    if mode == "422":
        gateway.status, gateway.content_type = 422, "application/problem+json"
    async with serve(relay_config(gateway.url, rate_limit=3)) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        replies = [await send(url, b"x") for _ in range(4)]
    assert [reply[0] for reply in replies] == [200 if mode != "422" else 422] * 3 + [429]
    assert replies[3][1]["Retry-After"].isdigit()
    assert spy.taken == 4 and len(gateway.posts) == 3


async def test_a_rate_limited_lane_request_the_handler_refuses_is_counted_once(
    gateway: RecordingGateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted by the lane, then refused by the handler's checks (415): not counted again."""
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    async with serve(relay_config(gateway.url, rate_limit=3)) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        statuses = [(await send(url, b"x", {"Content-Type": "text/plain"}))[0],
                    *[(await send(url, b"x"))[0] for _ in range(3)]]
    assert statuses == [415, 200, 200, 429]
    assert spy.taken == 4 and len(gateway.posts) == 2


async def test_the_lane_never_reuses_a_connection_its_answer_said_to_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A raw gateway whose second POST's answer (the lane's: the first left a pooled
    connection) says ``Connection: close`` and keeps the connection open: the next POST must
    go on another connection (RFC 9112 §9.6)."""
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    posts_on: list[int] = []  # the connection number of each POST

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = id(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                if head.startswith(b"POST"):
                    posts_on.append(number)
                close = b"Connection: close\r\n" if len(posts_on) == 2 else b""
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: message/ohttp-res\r\n%s"
                             b"Content-Length: 2\r\n\r\nok" % close)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = relay_config(f"http://127.0.0.1:{port}/.well-known/ohttp-gateway",
                          header_timeout=2.0, upstream_timeout=1.0)
    try:
        async with serve(config) as listening:
            url = f"http://127.0.0.1:{listening.port}/"
            replies, taken = [], []
            for i in range(3):
                replies.append(await send(url, b"r%d" % i))
                taken.append(spy.taken)
    finally:
        server.close()
        await server.wait_closed()
    assert [reply[2] for reply in replies] == [b"ok"] * 3
    assert taken[1] - taken[0] == 1 and len(posts_on) == 3  # the lane took the second
    assert posts_on[2] != posts_on[1]


@pytest.mark.parametrize("limited", [False, True])
async def test_a_request_handed_over_after_its_client_left_gives_back_its_slot(
    gateway: RecordingGateway, monkeypatch: pytest.MonkeyPatch, limited: bool,
) -> None:
    """The lane takes a POST, its client resets, then the gateway answers 422 (handed over to
    the handler's code): the handler still runs and gives back the in-flight slot. With one
    slot, a slot kept would answer every later POST 503."""
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    extra = {"rate_limit": 1000} if limited else {}
    async with serve(relay_config(gateway.url, max_in_flight=1, **extra)) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        assert (await send(url, b"warm"))[0] == 200  # leaves a pooled connection
        gateway.mode, gateway.status, gateway.content_type = "hang", 422, "application/problem+json"
        gateway.release.clear()
        taken = spy.taken
        _, writer = await asyncio.open_connection("127.0.0.1", listening.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: message/ohttp-req\r\n"
                     b"Content-Length: 1\r\n\r\nq")
        for _ in range(200):
            if len(gateway.posts) == 2:
                break
            await asyncio.sleep(0.01)
        assert spy.taken == taken + 1 and len(gateway.posts) == 2
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
        writer.close()  # a reset
        await asyncio.sleep(0.2)  # the relay sees it
        gateway.release.set()
        await asyncio.sleep(0.2)  # the gateway's 422, handed over to a client gone
        gateway.mode, gateway.status, gateway.content_type = "echo", 200, "message/ohttp-res"
        statuses = []
        for _ in range(50):
            statuses.append((await send(url, b"after"))[0])
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.02)
    assert statuses[-1] == 200, statuses


async def _eventually(condition: Callable[[], bool]) -> bool:
    for _ in range(100):  # bounded: a second
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


@pytest.mark.parametrize("where", ["take", "send", "answer"])
@pytest.mark.parametrize("limited", [False, True])
async def test_a_bug_in_a_lane_forward_answers_500_and_gives_back_its_slot(
    gateway: RecordingGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    limited: bool, where: str,
) -> None:
    """A bug in the lane's forward, as it takes a pooled connection (the pool is not one), as
    it sends (its table of header lines lost) or as the answer arrives (the passed fields of
    the gateway's head raise), is answered as a handler's bug (the fixed 500, one log line),
    and the forward lets go of what it holds: with one slot, a slot kept would answer the next
    POST 503; a gateway connection it took is closed; an unanswered client would wait for the
    test's timeout, and a limited lane's task for ever."""
    spy = LaneSpy()
    monkeypatch.setattr(relay.serve, "relay_lane", spy.wrap(relay_lane))
    config = relay_config(gateway.url, max_in_flight=1,
                          **({"rate_limit": 1000} if limited else {}))
    app = create_app(config)
    pools = app[STATE_KEY].pools
    gateway_port = int(gateway.url.split(":")[2].split("/")[0])

    def bug(_fields: object) -> None:
        raise LookupError("a bug")

    async with serve(config, app=app) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        assert (await send(url, b"warm"))[0] == 200  # leaves a pooled connection
        taken, connections = spy.taken, established_to(gateway_port)
        with monkeypatch.context() as patch:
            if where == "take":
                patch.setitem(pools, next(iter(pools)), object())  # not a pool: a TypeError
            elif where == "send":
                patch.setattr(relay.forward, "_CONTENT_TYPE_LINES", {})  # a KeyError
            else:
                patch.setattr(relay.forward, "passed_fields", bug)
                gateway.extra_headers = {"X-Head": "new"}  # a head ClientHead has not seen
            status, _, _ = await asyncio.wait_for(send(url, b"q"), 5)
        raised = where == "take" and not limited  # the lane itself raised: not counted taken
        assert status == 500 and spy.taken == taken + (0 if raised else 1)
        assert len(gateway.posts) == 1 + (where == "answer")
        assert await _eventually(lambda: not [
            t for t in asyncio.all_tasks() if "_lane_answer" in repr(t)])
        closed = 0 if where == "take" else 1  # the connection the forward took
        assert await _eventually(lambda: established_to(gateway_port) == connections - closed)
        gateway.extra_headers = {}
        assert (await send(url, b"after"))[0] == 200
    assert len([r for r in caplog.records if r.getMessage() == "internal_error"]) == 1
