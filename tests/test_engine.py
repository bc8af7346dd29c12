"""The serving engine (``ohttp.aio.engine``) alone: a real listener on loopback, tiny handlers,
exact bytes from raw client sockets."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct

import pytest

from ohttp.aio.engine import OVER_CAPACITY, Exchange, WriteStalled
from tests import engine_support
from tests.engine_support import (
    READ_BOUND,
    Listener,
    Response,
    connect,
    echo,
    fixed,
    get,
    hello,
    listening,
    read_response,
    read_to_end,
    recording,
)


@pytest.fixture(autouse=True, params=list(engine_support.LANE_MODES))
def _lane_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test, with no lane and with lanes that must not change what a client sees."""
    monkeypatch.setattr(engine_support, "lane_mode", engine_support.LANE_MODES[request.param])


# -- persistence (RFC 9112 §9.3)


async def test_two_requests_on_one_connection() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        for path in ("/a", "/b"):
            writer.write(get(path))
            response = await read_response(reader)
            assert (response.status, response.body) == (200, f"hello {path}".encode())
            assert response.get("connection") is None  # HTTP/1.1 persists by default
        assert listener.server.connections  # still open
        writer.close()


async def test_http10_without_keep_alive_closes() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/", version="1.0"))
        response = await read_response(reader)
        assert response.status == 200 and response.get("connection") == "close"
        assert await read_to_end(reader) == b""
        writer.close()


async def test_http10_keep_alive_stays_open_and_says_so() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        for path in ("/a", "/b"):
            writer.write(get(path, "Connection: keep-alive", version="1.0"))
            response = await read_response(reader)
            assert response.status == 200 and response.body == f"hello {path}".encode()
            assert response.get("connection") == "keep-alive"  # RFC 9112 §9.3 (1.0 clients)
        writer.close()


async def test_pipelined_requests_are_answered_in_order_once_each() -> None:
    seen: list[str] = []

    async def recording(exchange: Exchange) -> None:
        seen.append(exchange.head.path)
        await asyncio.sleep(0)  # answers must still come out in request order
        await hello(exchange)

    async with listening(recording) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/1") + get("/2") + get("/3", "Connection: close"))
        bodies = [(await read_response(reader)).body for _ in range(3)]
        assert bodies == [b"hello /1", b"hello /2", b"hello /3"]
        assert await read_to_end(reader) == b""  # nothing answered twice
        assert seen == ["/1", "/2", "/3"]
        writer.close()


async def test_head_gets_the_head_with_the_get_content_length() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/x"))
        as_get = await read_response(reader)
        writer.write(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n" + get("/after", "Connection: close"))
        as_head = await read_response(reader, head_only=True)
        # RFC 9110 §9.3.2: the same fields as GET, no content; the next bytes are the next answer
        assert as_head.status == 200
        assert as_head.get("content-length") == as_get.get("content-length") == "8"
        after = await read_response(reader)
        assert after.body == b"hello /after"
        writer.close()


async def test_an_upgrade_is_answered_and_nothing_after_it_is_read() -> None:
    seen: list[str] = []
    async with listening(recording(seen)) as listener:
        reader, writer = await connect(listener.port)
        # RFC 9110 §7.8: the bytes after an upgrade request are not HTTP/1.1 for this server
        writer.write(get("/up", "Connection: Upgrade", "Upgrade: websocket") + get("/after"))
        assert (await read_response(reader)).body == b"hello /up"
        assert await read_to_end(reader, bound=1.0) == b""  # not the 5 s keep-alive deadline
        assert seen == ["/up"]
        writer.close()


# -- Expect (RFC 9110 §10.1.1)


async def test_expect_100_continue_comes_before_the_answer() -> None:
    async with listening(echo) as listener:
        reader, writer = await connect(listener.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_BOUND)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        response = await read_response(reader)
        assert (response.status, response.body) == (200, b"hello")
        writer.close()


async def test_another_expectation_gets_417() -> None:
    async with listening(echo) as listener:
        reader, writer = await connect(listener.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nz")
        response = await read_response(reader)
        assert (response.status, response.body) == (417, fixed(417))
        assert await read_to_end(reader) == b""
        writer.close()


# -- limits


async def _only_answer(listener: Listener, raw: bytes) -> Response:
    """The answer to ``raw``, which must be the only one, followed by the close."""
    reader, writer = await connect(listener.port)
    writer.write(raw)
    response = await read_response(reader)
    assert await read_to_end(reader) == b""
    writer.close()
    assert response.body == fixed(response.status)  # a fixed text, nothing of the request
    assert response.get("server") is None and response.get("connection") == "close"
    return response


async def test_a_long_request_target_gets_414_and_close() -> None:
    async with listening(hello, max_request_line=64) as listener:
        # RFC 9112 §3: a target longer than the server parses; it comes in two writes here.
        reader, writer = await connect(listener.port)
        writer.write(b"GET /" + b"a" * 40)
        await writer.drain()
        await asyncio.sleep(0.05)  # two reads: the engine must count the target's pieces
        writer.write(b"a" * 40 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await read_response(reader)
        assert (response.status, response.body) == (414, fixed(414))
        assert await read_to_end(reader) == b""
        writer.close()
        reader, writer = await connect(listener.port)
        writer.write(get("/" + "a" * 63))  # a target of exactly the limit is parsed
        assert (await read_response(reader)).status == 200
        writer.close()


async def test_a_long_field_line_gets_431() -> None:
    async with listening(hello, max_field_line=64) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/", "X-Long: " + "v" * 58))  # name and value: 64 bytes, the limit
        assert (await read_response(reader)).status == 200
        writer.close()
        response = await _only_answer(listener, get("/", "X-Long: " + "v" * 60))
        assert response.status == 431  # RFC 6585 §5


async def test_too_many_fields_get_431() -> None:
    async with listening(hello, max_fields=4) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/", "A: 1", "B: 2", "C: 3"))  # with Host: 4 fields, the limit
        assert (await read_response(reader)).status == 200
        writer.close()
        response = await _only_answer(listener, get("/", "A: 1", "B: 2", "C: 3", "D: 4"))
        assert response.status == 431


@pytest.mark.parametrize(("raw", "status"), [
    (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501),  # RFC 9110 §9.1: a method we do not know
    (b"\r\nget / HTTP/1.1\r\nHost: x\r\n\r\n", 501),  # methods are case-sensitive
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS ClientHello: no method
    (b"G\x00T / HTTP/1.1\r\n\r\n", 400),
], ids=["unknown", "lower-case", "tls", "no-token"])
async def test_an_unrecognized_method_gets_501_and_bytes_that_are_none_400(
    raw: bytes, status: int
) -> None:
    async with listening(hello) as listener:
        assert (await _only_answer(listener, raw)).status == status


async def test_an_unrecognized_method_on_a_kept_connection_gets_501_and_close() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/first"))
        assert (await read_response(reader)).body == b"hello /first"
        writer.write(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await read_response(reader)
        assert (response.status, response.get("connection")) == (501, "close")
        assert await read_to_end(reader) == b""
        writer.close()


# -- request smuggling (RFC 9112 §6.3, §11.2): refused, and nothing after it is answered

_SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
_AMBIGUOUS = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two_lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n",
    "same_two_lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                        b"Content-Length: 0\r\n\r\n",
    "chunked_twice": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                     b"0\r\n\r\n",
    "bare_lf": b"POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
    "obs_fold": b"POST / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(_AMBIGUOUS.values()), ids=list(_AMBIGUOUS))
async def test_ambiguous_framing_gets_400_and_close(raw: bytes) -> None:
    seen: list[str] = []
    async with listening(recording(seen, echo)) as listener:
        response = await _only_answer(listener, raw + _SMUGGLED)
        assert response.status == 400
        assert seen == []  # neither the ambiguous request nor the smuggled one ran


async def test_a_refused_request_after_a_good_one_is_answered_in_order() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/ok") + _AMBIGUOUS["cl_and_te"] + _SMUGGLED)
        assert (await read_response(reader)).body == b"hello /ok"
        refused = await read_response(reader)
        assert (refused.status, refused.body) == (400, fixed(400))
        assert await read_to_end(reader) == b""
        writer.close()


# -- the connection cap


async def test_the_connection_over_the_cap_gets_503_and_close() -> None:
    async with listening(hello, max_connections=2) as listener:
        held = []
        for _ in range(2):  # two admitted connections, each proven so by an answer
            reader, writer = await connect(listener.port)
            writer.write(get())
            assert (await read_response(reader)).status == 200
            held.append(writer)
        reader, writer = await connect(listener.port)
        writer.write(get())
        answer = await read_to_end(reader)
        assert answer == OVER_CAPACITY  # no request read: a fixed answer, then the close
        assert answer.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in answer
        assert len(listener.server.connections) == 2
        for each in (*held, writer):
            each.close()


# -- deadlines


async def test_a_partial_head_is_closed_after_the_head_deadline() -> None:
    async with listening(hello, header_timeout=0.2) as listener:
        reader, writer = await connect(listener.port)
        writer.write(b"GET / HTTP/1.1\r\nHo")
        assert await read_to_end(reader, bound=1.0) == b""  # the 0.2 s head deadline
        writer.close()


async def test_a_partial_second_head_is_closed_after_the_head_deadline() -> None:
    async with listening(hello, header_timeout=0.2) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        assert (await read_response(reader)).status == 200
        writer.write(b"GET / HTTP/1.1\r\nHo")
        assert await read_to_end(reader, bound=1.0) == b""  # not the 5 s keep-alive deadline
        writer.close()


async def test_a_head_begun_after_an_idle_while_has_the_head_deadline() -> None:
    async with listening(hello, header_timeout=0.2, keepalive_timeout=5.0) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        assert (await read_response(reader)).status == 200
        await asyncio.sleep(0.3)  # past the first head's deadline: the idle one applies now
        writer.write(b"GET / HTTP/1.1\r\nHo")
        assert await read_to_end(reader, bound=1.0) == b""  # not the 5 s keep-alive deadline
        writer.close()


async def test_an_idle_connection_is_closed_after_the_keepalive_deadline() -> None:
    async with listening(hello, keepalive_timeout=0.2, header_timeout=5.0) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        assert (await read_response(reader)).status == 200
        assert await read_to_end(reader, bound=1.0) == b""  # not the 5 s head deadline
        writer.close()


async def test_a_handler_longer_than_both_deadlines_is_not_cut_off() -> None:
    async def slow(exchange: Exchange) -> None:
        await asyncio.sleep(0.6)  # the work itself: three times either deadline
        await hello(exchange)

    async with listening(slow, header_timeout=0.2, keepalive_timeout=0.2) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/slow"))
        response = await read_response(reader)
        assert (response.status, response.body) == (200, b"hello /slow")
        writer.close()


async def test_trailer_fields_are_not_merged_into_the_head() -> None:
    # RFC 9110 §6.5.1; a gateway must not take a token sent as a trailer for a header field.
    seen: list[tuple[str | None, list[str]]] = []

    async def fields(exchange: Exchange) -> None:
        body = b"".join([piece async for piece in exchange.body.iter_any()])
        headers = exchange.head.headers
        seen.append((headers.get("authorization"), headers.getall("content-encoding")))
        exchange.respond(200, [], body)

    async with listening(fields) as listener:
        reader, writer = await connect(listener.port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nContent-Encoding: gzip\r\nAuthorization: Bearer t\r\n\r\n"
        )
        response = await read_response(reader)
        assert (response.status, response.body) == (200, b"abc")
        assert seen == [(None, [])]
        writer.close()


# -- answering before the body ends


async def test_an_early_answer_is_read_by_a_client_still_sending() -> None:
    async def too_large(exchange: Exchange) -> None:
        exchange.respond(413, [], b"too large")  # without reading the body

    size = 1 << 20
    async with listening(too_large, header_timeout=2.0) as listener:
        reader, writer = await connect(listener.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"b" * size)
        await asyncio.wait_for(writer.drain(), READ_BOUND)  # all of it taken: lingering
        response = await read_response(reader)
        assert (response.status, response.body) == (413, b"too large")
        assert response.get("connection") == "close"  # it says so: RFC 9112 §9.6
        assert await read_to_end(reader) == b""  # then the connection ends
        writer.close()


async def test_an_answer_after_the_whole_body_keeps_the_connection() -> None:
    async with listening(echo) as listener:
        reader, writer = await connect(listener.port)
        for _ in range(2):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            response = await read_response(reader)
            assert (response.status, response.get("connection")) == (200, None)
        writer.close()


# -- streamed answers (chunked transfer coding, RFC 9112 §7.1)


async def test_a_streamed_answer_is_valid_chunked_coding() -> None:
    async def streamed(exchange: Exchange) -> None:
        exchange.start(200, [("Content-Type", "application/octet-stream")])
        pieces = (b"abc", b"", b"defg") if exchange.head.path == "/" else (b"chunked again",)
        for piece in pieces:
            await exchange.write(piece, 1.0)
        exchange.end()

    async with listening(streamed) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_BOUND)
        assert b"\r\nTransfer-Encoding: chunked\r\n" in raw_head
        assert b"Content-Length" not in raw_head
        chunks = await asyncio.wait_for(reader.readexactly(22), READ_BOUND)
        assert chunks == b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"  # an empty piece sends no chunk
        writer.write(get("/next"))  # the framing ended where it should: the connection goes on
        assert (await read_response(reader)).body == b"chunked again"
        writer.close()


async def test_a_client_that_stops_reading_stalls_a_write() -> None:
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[tuple[BaseException, float]] = loop.create_future()

    async def flood(exchange: Exchange) -> None:
        exchange.start(200, [])
        started = loop.time()
        try:
            while True:
                await exchange.write(b"f" * (1 << 20), 0.3)
        except ConnectionError as exc:
            outcome.set_result((exc, loop.time() - started))
            raise

    async with listening(flood, small_buffers=True) as listener:
        _, writer = await connect(listener.port, small_buffers=True)
        writer.write(get())  # and never read
        error, waited = await asyncio.wait_for(outcome, 0.3 + 2.0)
        assert isinstance(error, WriteStalled) and isinstance(error, ConnectionError)
        assert waited >= 0.3
        await asyncio.wait_for(listener.emptied.wait(), READ_BOUND)  # aborted
        writer.close()


# -- handler failures and departed clients


async def test_a_handler_raising_gets_a_fixed_500_and_close() -> None:
    async def broken(exchange: Exchange) -> None:
        raise RuntimeError("a bug")

    async with listening(broken) as listener:
        response = await _only_answer(listener, get())
        assert response.status == 500


async def test_a_handler_that_never_answers_gets_a_fixed_500_and_close() -> None:
    async def silent(exchange: Exchange) -> None:
        return

    async with listening(silent) as listener:
        response = await _only_answer(listener, get())
        assert response.status == 500


_LEAVING = [  # how the client leaves, how the handler reads, what the read raises
    ("close", "readexactly", asyncio.IncompleteReadError),  # as asyncio's StreamReader
    ("close", "iter_any", None),  # the pieces end; Body.truncated says the body was cut
    ("reset", "readexactly", ConnectionResetError),
    ("reset", "iter_any", ConnectionResetError),
]


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
@pytest.mark.parametrize(("leaving", "reading", "expected"), _LEAVING)
async def test_a_client_leaving_mid_body_fails_the_body_read(
    chunked: bool, leaving: str, reading: str, expected: type[BaseException] | None
) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    truncated: list[bool] = []

    async def reader_of_the_body(exchange: Exchange) -> None:
        try:
            if reading == "readexactly":
                await exchange.body.readexactly(100)
            else:
                async for _ in exchange.body.iter_any():
                    pass
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            outcome.set_result(exc)
            raise
        truncated.append(exchange.body.truncated)
        outcome.set_result(None)
        exchange.respond(200, [])

    framing = (b"Transfer-Encoding: chunked\r\n\r\n64\r\n" if chunked
               else b"Content-Length: 100\r\n\r\n")
    async with listening(reader_of_the_body) as listener:
        _, writer = await connect(listener.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + b"p" * 10)  # of 100 bytes
        await writer.drain()
        if leaving == "reset":  # an abortive close: RST instead of FIN
            linger = struct.pack("ii", 1, 0)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.close()
        error = await asyncio.wait_for(outcome, READ_BOUND)
        if expected is None:  # read to its end: never taken for a whole body
            assert error is None and truncated == [True]
        else:
            assert type(error) is expected


async def test_a_client_that_ends_its_side_gets_its_answer_then_the_close() -> None:
    ended = asyncio.Event()

    async def waiting(exchange: Exchange) -> None:
        await ended.wait()  # answers after the client's FIN arrived
        await hello(exchange)

    async with listening(waiting) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/half"))
        writer.write_eof()
        await asyncio.sleep(0.1)  # the FIN reaches the engine while the handler waits (no
        # public event tells it; a later FIN would take the path of an idle connection)
        ended.set()
        response = await read_response(reader)
        assert response.body == b"hello /half"
        assert await read_to_end(reader, bound=1.0) == b""  # not the 5 s keep-alive deadline
        writer.close()


# -- shutdown


async def test_shutdown_closes_idle_connections_at_once() -> None:
    async with listening(hello) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        assert (await read_response(reader)).status == 200
        await asyncio.wait_for(listener.server.shutdown(5.0), 1.0)  # nothing to wait for
        assert await read_to_end(reader) == b""
        writer.close()


async def test_shutdown_lets_an_answer_in_progress_finish() -> None:
    started = asyncio.Event()

    async def slow(exchange: Exchange) -> None:
        started.set()
        await asyncio.sleep(0.2)
        await hello(exchange)

    async with listening(slow) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get("/slow"))
        await started.wait()
        await listener.server.shutdown(5.0)
        response = await read_response(reader)
        assert (response.status, response.body) == (200, b"hello /slow")
        assert response.get("connection") == "close"
        assert await read_to_end(reader) == b""
        writer.close()


async def test_shutdown_aborts_an_answer_over_the_timeout() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def stuck(exchange: Exchange) -> None:
        started.set()
        await release.wait()
        await hello(exchange)

    async with listening(stuck) as listener:
        reader, writer = await connect(listener.port)
        writer.write(get())
        await started.wait()
        await listener.server.shutdown(0.2)
        await asyncio.wait_for(listener.emptied.wait(), READ_BOUND)
        assert await read_to_end(reader) == b""  # no answer: the connection was dropped
        writer.close()
        release.set()


async def test_shutdown_cancels_a_handler_over_the_timeout() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def never_answers(_exchange: Exchange) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # cleanup that takes a while (closing a stream)
            cancelled.set()

    async with listening(never_answers) as listener:
        _reader, writer = await connect(listener.port)
        writer.write(get())
        await started.wait()
        await listener.server.shutdown(0.2)
        assert cancelled.is_set()  # not left pending, and its cleanup ran before the return
        writer.close()


# -- body flow control


async def test_a_large_body_read_slowly_arrives_whole() -> None:
    size = 2 << 20
    sent = bytes(range(256)) * (size // 256)
    gate = asyncio.Event()

    async def slow_reader(exchange: Exchange) -> None:
        await gate.wait()
        digest = hashlib.sha256()
        received = 0
        while received < size:
            piece = await exchange.body.readexactly(min(8192, size - received))
            digest.update(piece)
            received += len(piece)
            await asyncio.sleep(0)
        exchange.respond(200, [], digest.hexdigest().encode())

    async with listening(slow_reader, small_buffers=True) as listener:
        reader, writer = await connect(listener.port, small_buffers=True)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + sent)
        draining = asyncio.ensure_future(writer.drain())
        done, _ = await asyncio.wait([draining], timeout=0.3)
        assert not done  # the engine stopped reading: the body is not buffered whole
        gate.set()
        await asyncio.wait_for(draining, READ_BOUND)
        response = await read_response(reader)
        assert response.body == hashlib.sha256(sent).hexdigest().encode()
        writer.close()
