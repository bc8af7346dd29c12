"""The serving engine's lane (``ohttp.aio.engine.LaneRequest``): which requests it is offered,
its answers by callback, and the order and limits it keeps with the handler. A real listener
on loopback and raw client sockets, as in test_engine."""

from __future__ import annotations

import asyncio

import pytest

from ohttp.aio.engine import LANE_MAX_BODY, Exchange, Lane, LaneRequest
from tests.engine_support import (
    connect,
    fixed,
    get,
    hello,
    listening,
    read_response,
    read_to_end,
    recording,
)


def post(body: bytes, path: str = "/", *extra: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Recorder:
    """A lane that answers each request it is offered with its body reversed, after
    ``delay`` seconds (None: at once, inside the offer), and records what it saw."""

    def __init__(self, delay: float | None = None, *, take: bool = True) -> None:
        self.delay = delay
        self.take = take
        self.offered: list[tuple[str, bytes]] = []
        self.requests: list[LaneRequest] = []

    def __call__(self, request: LaneRequest) -> bool:
        self.offered.append((request.head.method, request.body))
        self.requests.append(request)
        if not self.take:
            return False
        if self.delay is None:
            self.answer(request)
        else:
            asyncio.get_running_loop().call_later(self.delay, self.answer, request)
        return True

    @staticmethod
    def answer(request: LaneRequest) -> None:
        request.respond(200, [("Content-Type", "text/plain")], b"lane " + request.body[::-1])


async def test_a_small_whole_post_is_answered_by_the_lane_and_the_connection_kept() -> None:
    lane = Recorder()
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        for body in (b"abc", b"xyz"):
            writer.write(post(body))
            response = await read_response(reader)
            assert (response.status, response.body) == (200, b"lane " + body[::-1])
            assert response.get("connection") is None
            assert response.get("date") is not None
        writer.write(get("/after"))  # the handler answers what the lane is not offered
        assert (await read_response(reader)).body == b"hello /after"
        assert lane.offered == [("POST", b"abc"), ("POST", b"xyz")]
        writer.close()


async def test_an_answer_given_later_is_sent_and_the_next_request_follows() -> None:
    lane = Recorder(delay=0.05)
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"one"))
        assert (await read_response(reader)).body == b"lane eno"
        writer.write(post(b"two"))
        assert (await read_response(reader)).body == b"lane owt"
        writer.close()


async def test_requests_pipelined_behind_a_lane_request_are_answered_after_it() -> None:
    lane = Recorder(delay=0.1)
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"first") + get("/second") + post(b"third"))
        bodies = [(await read_response(reader)).body for _ in range(3)]
        # The third is not offered: the handler answers what queues behind an answer.
        assert bodies == [b"lane tsrif", b"hello /second", b"hello /"]
        assert lane.offered == [("POST", b"first")]
        writer.close()


@pytest.mark.parametrize("request_bytes", [
    post(b"x" * (LANE_MAX_BODY + 1)),  # too large
    post(b"body", "/", "Expect: 100-continue"),  # an expectation
    post(b"", "/"),  # no body
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
])
async def test_a_request_the_lane_must_not_see_goes_to_the_handler(request_bytes: bytes) -> None:
    lane = Recorder()
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(request_bytes)
        response = await read_response(reader)
        if response.status == 100:
            response = await read_response(reader)
        assert response.body == b"hello /"
        assert lane.offered == []
        writer.close()


async def test_a_body_that_arrives_after_its_head_goes_to_the_handler() -> None:
    lane = Recorder()
    received: list[bytes] = []

    async def echo(exchange: Exchange) -> None:
        body = b"".join([piece async for piece in exchange.body.iter_any()])
        received.append(body)
        exchange.respond(200, [], body)

    async with listening(echo, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        whole = post(b"0123456789")
        writer.write(whole[:-4])
        await writer.drain()
        await asyncio.sleep(0.05)  # the head and part of the body in one read, then the rest
        writer.write(whole[-4:])
        assert (await read_response(reader)).body == b"0123456789"
        assert (lane.offered, received) == ([], [b"0123456789"])
        writer.close()


async def test_a_declined_request_is_answered_by_the_handler_with_its_body() -> None:
    lane = Recorder(take=False)

    async def echo(exchange: Exchange) -> None:
        exchange.respond(200, [], exchange.body.read_nowait(1 << 20))

    async with listening(echo, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"declined"))
        assert (await read_response(reader)).body == b"declined"
        assert lane.offered == [("POST", b"declined")]
        writer.close()


async def test_a_request_handed_over_reaches_the_handler_given_with_its_body() -> None:
    async def handed(exchange: Exchange) -> None:
        assert exchange.body.complete
        exchange.respond(201, [], b"handed " + exchange.body.read_nowait(1 << 20))

    def lane(request: LaneRequest) -> bool:
        request.hand_over(handed)
        return True

    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc") + get("/next"))
        first, second = await read_response(reader), await read_response(reader)
        assert (first.status, first.body) == (201, b"handed abc")
        assert second.body == b"hello /next"  # the default handler again
        writer.close()


@pytest.mark.parametrize(("extra", "version", "connection", "closes"), [
    ((), "1.1", None, False),
    (("Connection: close",), "1.1", "close", True),
    (("Connection: keep-alive",), "1.0", "keep-alive", False),  # RFC 9112 §9.3
    ((), "1.0", "close", True),
])
async def test_the_lane_answer_keeps_or_ends_the_connection_as_the_request_asks(
    extra: tuple[str, ...], version: str, connection: str | None, closes: bool,
) -> None:
    async with listening(hello, lane=Recorder(delay=0.01)) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"ab", "/", *extra, version=version))
        response = await read_response(reader)
        assert (response.body, response.get("connection")) == (b"lane ba", connection)
        if closes:
            assert await read_to_end(reader) == b""
        else:
            writer.write(get("/again"))
            assert (await read_response(reader)).body == b"hello /again"
        writer.close()


async def test_a_lane_request_is_answered_once() -> None:
    lane = Recorder()
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        await read_response(reader)
        with pytest.raises(RuntimeError):
            Recorder.answer(lane.requests[0])
        with pytest.raises(RuntimeError):
            lane.requests[0].hand_over(hello)
        writer.close()


async def test_shutdown_lets_a_lane_answer_finish_and_then_closes() -> None:
    lane = Recorder(delay=0.2)
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        await asyncio.sleep(0.05)  # offered, not yet answered
        await listener.server.shutdown(2.0)
        response = await read_response(reader)
        assert (response.body, response.get("connection")) == (b"lane cba", "close")
        assert await read_to_end(reader) == b""


async def test_a_client_gone_before_the_lane_answers_loses_nothing_else() -> None:
    lane = Recorder(delay=0.1)
    async with listening(hello, lane=lane) as listener:
        _, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        await asyncio.sleep(0.02)
        writer.close()
        await asyncio.wait_for(listener.emptied.wait(), 2.0)
        await asyncio.sleep(0.15)  # the late answer goes nowhere, without an error
        reader, writer = await connect(listener.port)
        writer.write(post(b"new"))
        assert (await read_response(reader)).body == b"lane wen"
        writer.close()


async def test_a_head_request_answered_by_the_lane_gets_the_head_only() -> None:
    lane: Lane = Recorder()
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        raw = b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"
        writer.write(raw + get("/next"))
        head = await read_response(reader, head_only=True)
        assert head.get("content-length") == "7"
        assert (await read_response(reader)).body == b"hello /next"  # no body came between
        writer.close()


async def test_a_refused_request_behind_a_lane_request_is_answered_after_it() -> None:
    async with listening(hello, lane=Recorder(delay=0.05)) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc") + b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        first = await read_response(reader)
        second = await read_response(reader)
        assert (first.body, second.status) == (b"lane cba", 400)
        assert await read_to_end(reader) == b""


class Spawner:
    """A lane that answers from a coroutine the engine runs (``LaneRequest.spawn``): after
    ``delay`` seconds it answers as the Recorder does, raises (``fail``), or ends without an
    answer (``silent``); ``ended`` says whether its coroutine ran to its end or was cancelled."""

    def __init__(self, delay: float = 0.0, *, fail: bool = False, silent: bool = False,
                 linger: float = 0.0, says_taken: bool = True) -> None:
        self.delay, self.fail, self.silent, self.linger = delay, fail, silent, linger
        self.says_taken = says_taken
        self.ended: list[str] = []
        self.requests: list[LaneRequest] = []

    def __call__(self, request: LaneRequest) -> bool:
        self.requests.append(request)
        request.spawn(self.answer(request))
        return self.says_taken

    async def answer(self, request: LaneRequest) -> None:
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise ValueError("a bug")
            if not self.silent:
                Recorder.answer(request)
            await asyncio.sleep(self.linger)  # still running after its answer
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        self.ended.append("ran")


async def test_a_spawned_answer_is_sent_and_requests_behind_it_follow_in_order() -> None:
    lane = Spawner(0.05)
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"one") + get("/two"))
        bodies = [(await read_response(reader)).body for _ in range(2)]
        assert bodies == [b"lane eno", b"hello /two"]
        writer.write(post(b"three"))
        assert (await read_response(reader)).body == b"lane eerht"
        assert lane.ended == ["ran", "ran"]
        late = lane.answer(lane.requests[0])
        with pytest.raises(RuntimeError):  # answered: no second answer from a second task
            lane.requests[0].spawn(late)
        late.close()
        writer.close()


def raising(_: LaneRequest) -> bool:
    raise ValueError("a bug")


@pytest.mark.parametrize("lane", [raising, Spawner(fail=True), Spawner(silent=True)],
                         ids=["raises", "spawned raises", "spawned gives none"])
async def test_a_lane_bug_gets_a_fixed_500_and_close(lane: Lane) -> None:
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        response = await read_response(reader)
        assert (response.status, response.body) == (500, fixed(500))
        assert await read_to_end(reader) == b""


async def test_shutdown_past_its_timeout_cancels_a_spawned_answer() -> None:
    lane = Spawner(30.0)
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        await asyncio.sleep(0.05)  # offered and spawned, waiting
        await asyncio.wait_for(listener.server.shutdown(0.1), 5.0)
        assert lane.ended == ["cancelled"]
        assert await read_to_end(reader) == b""  # dropped without an answer
        writer.close()


async def test_a_spawned_answer_after_its_client_left_goes_nowhere() -> None:
    lane = Spawner(0.1)
    async with listening(hello, lane=lane) as listener:
        _, writer = await connect(listener.port)
        writer.write(post(b"abc"))
        await asyncio.sleep(0.02)
        writer.close()
        await asyncio.sleep(0.2)  # it ran and answered a closed connection, without an error
        assert lane.ended == ["ran"]
        reader, writer = await connect(listener.port)
        writer.write(post(b"new"))
        assert (await read_response(reader)).body == b"lane wen"
        writer.close()


@pytest.mark.parametrize("lane", [raising, Spawner(0.05, fail=True)],
                         ids=["raises", "spawned raises"])
async def test_nothing_queued_behind_a_lane_bug_is_answered(lane: Lane) -> None:
    ran: list[str] = []
    async with listening(recording(ran), lane=lane) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/one"))  # the handler answers: the connection's task now waits
        assert (await read_response(reader)).body == b"hello /one"
        writer.write(post(b"abc") + get("/three"))
        response = await read_response(reader)
        assert (response.status, await read_to_end(reader)) == (500, b"")
        await asyncio.sleep(0.05)
        assert ran == ["/one"]  # not /three: its client is gone with the connection
        writer.close()


async def test_every_spawned_answer_still_running_is_cancelled_at_shutdown() -> None:
    lane = Spawner(linger=30.0)  # each answers at once, then keeps running
    async with listening(hello, lane=lane) as listener:
        reader, writer = await connect(listener.port)
        for body in (b"one", b"two"):
            writer.write(post(body))
            assert (await read_response(reader)).body == b"lane " + body[::-1]
        await asyncio.wait_for(listener.server.shutdown(0.1), 5.0)
        assert lane.ended == ["cancelled", "cancelled"]
        writer.close()


async def test_a_lane_that_spawns_an_answer_has_taken_the_request_whatever_it_says() -> None:
    ran: list[str] = []
    async with listening(recording(ran), lane=Spawner(0.02, says_taken=False)) as listener:
        reader, writer = await connect(listener.port)
        writer.write(post(b"abc") + get("/next"))
        bodies = [(await read_response(reader)).body for _ in range(2)]
        assert bodies == [b"lane cba", b"hello /next"] and ran == ["/next"]
        writer.close()
