"""The serving engine under mutated requests, on a real listener (ohttp.aio.engine).

Seeded mutations (bit flips, inserted, deleted and repeated bytes, cuts) of valid requests:
GET, POST with Content-Length, chunked POST (one with a trailer field), a pipelined pair.
Whatever arrives, every answer is well-formed HTTP/1.1 with a status the engine or the handler
gives, no handler ever sees a failure of its own (no ``internal_error``), and the server still
serves afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator

import pytest

from ohttp.aio.engine import EngineLimits, EngineServer, Exchange
from tests.support import LOOPBACK

SEEDS = (
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: t/t\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n",
)
CASES = 400
BATCH = 50
# Handler answers, and the engine's own refusals (RFC 9112 / RFC 9110 / RFC 6585).
STATUSES = {200, 400, 413, 414, 417, 431, 501, 503}
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [A-Za-z -]+\r\n")


async def _handler(exchange: Exchange) -> None:
    if exchange.head.content_length is not None and exchange.head.content_length > 1000:
        exchange.respond(413, [], b"")  # answered unread: the engine lingers, then closes
        return
    body = b"".join([piece async for piece in exchange.body.iter_any()])
    exchange.respond(200, [("Content-Type", "text/plain")], b"%d" % len(body))


@pytest.fixture
async def engine() -> AsyncIterator[int]:
    server = EngineServer(_handler, EngineLimits(64, 0.3, 0.3))
    listener = await asyncio.get_running_loop().create_server(server.factory, LOOPBACK, 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await server.shutdown(1.0)


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data))
        kind = rng.randrange(5)
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data.insert(at, rng.choice(b"\r\n :\t\x00\x7f0aZ,;"))
        elif kind == 2 and len(data) > 1:
            del data[at]
        elif kind == 3:
            data[at:at] = data[at : at + rng.randint(1, 8)]
        else:
            del data[at:]
            if not data:
                data = bytearray(seed[:1])
    return bytes(data)


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(5):
            return await reader.read()  # the engine ends every connection here within 0.3 s
    finally:
        writer.close()


def _statuses(answer: bytes) -> list[int]:
    """The statuses of the answers in ``answer``; fails on anything not a whole answer."""
    statuses = []
    rest = answer
    while rest:
        line = STATUS_LINE.match(rest)
        assert line is not None, answer
        head, separator, rest = rest.partition(b"\r\n\r\n")
        assert separator, answer
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
        assert length is not None, answer
        rest = rest[int(length.group(1)) :]
        statuses.append(int(line.group(1)))
    return statuses


async def test_mutated_requests_get_well_formed_answers(
    engine: int, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(9112)
    inputs = [_mutate(rng, SEEDS[index % len(SEEDS)]) for index in range(CASES)]
    seen: set[int] = set()
    with caplog.at_level(logging.INFO, logger="ohttp.serving"):
        for start in range(0, CASES, BATCH):
            batch = inputs[start : start + BATCH]
            answers = await asyncio.gather(*(_exchange(engine, data) for data in batch))
            for answer in answers:
                statuses = _statuses(answer)
                assert set(statuses) <= STATUSES, (statuses, answer)
                seen.update(statuses)
    assert {200, 400} <= seen  # the mutations reached both the handler and the parser's refusals
    assert not [r for r in caplog.records if r.getMessage() == "internal_error"]
    assert _statuses(await _exchange(engine, SEEDS[1])) == [200]  # still serving
