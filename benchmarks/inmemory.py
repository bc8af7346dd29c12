"""The relay's request path in Python alone: in-memory transports, no syscalls, no scheduler
(a benchmark, not a test).

    python -m benchmarks.inmemory [--requests 20000] [--rounds 7]

``relay_bench`` measures whole processes, where the kernel's share and the machine's noise
move every figure by microseconds. Here the same code runs with transports that keep what is
written in a list, so each round is deterministic to about 1 %: the way to time one cut to
the relay's or the engine's Python before measuring it side by side with nginx. Targets,
microseconds per request (median of the rounds, the minimum in brackets; each round times
every target once, one after the other):

- ``relay``: the serving engine with the relay's lane (``relay.engine.relay_lane``), a 1 KiB
  POST in, an nginx-like gateway answer of 32 bytes fed back to its pooled connection, the
  client's answer out; the pooled connection's ``peer_closed`` check polls a real socket;
- ``engine``: the engine alone with a lane that answers at once (its parse, head, lane offer
  and whole answer);
- ``pfloor``: ``benchmarks.proxy_floor``'s two protocols on the same bytes, the least a
  Python relay does per request.

Loopback only: the relay's key mirror tries 127.0.0.1:9 once and fails, as it may.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvloop
from aiohttp import web

from benchmarks.proxy_floor import _Client, _Pool, _Upstream
from ohttp.aio.engine import EngineLimits, EngineServer, Exchange, LaneRequest
from ohttp.encapsulation import REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE
from relay.app import create_app
from relay.config import RelayConfig, parse_gateways
from relay.engine import engine_handler, relay_lane
from relay.state import STATE_KEY
from relay.upstream import UpstreamConnection

ANSWER = b"0123456789abcdef0123456789abcdef"
REQUEST = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Type: "
           + REQUEST_MEDIA_TYPE.encode() + b"\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024)
GATEWAY_ANSWER = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\n"
                  b"Content-Type: " + RESPONSE_MEDIA_TYPE.encode() + b"\r\nContent-Length: 32\r\n"
                  b"Connection: keep-alive\r\n\r\n" + ANSWER)


class MemoryTransport:
    """What a protocol writes, kept in a list; ``sock`` is the socket it reports."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.written: list[bytes] = []
        self._sock = sock

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


Step = Callable[[], None]
Target = tuple[Step, MemoryTransport]  # one request's step, and the client side it answers


def time_interleaved(steps: dict[str, Step], requests: int, rounds: int,
                     ) -> dict[str, tuple[float, float]]:
    """(median, minimum) µs per call of each step: every round times each step once, one
    after the other, so a change in the machine's load hits all of them alike."""
    per_request: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(requests):
                step()
            per_request[name].append((time.perf_counter() - started) / requests * 1e6)
    return {name: (statistics.median(times), min(times)) for name, times in per_request.items()}


@contextmanager
def _socket_pair() -> Iterator[socket.socket]:
    ours, theirs = socket.socketpair()
    try:
        yield ours
    finally:
        ours.close()
        theirs.close()


async def relay_target(app: web.Application, sock: socket.socket) -> Target:
    """One request through the relay's lane: the client's bytes, then the gateway's answer."""
    state = app[STATE_KEY]
    server = EngineServer(engine_handler(app), EngineLimits(8, 30.0, 30.0), lane=relay_lane(app))
    client = MemoryTransport()
    connection = server.factory()
    connection.connection_made(client)  # type: ignore[arg-type]
    (pool,) = state.pools.values()
    upstream = UpstreamConnection(asyncio.get_running_loop())
    upstream.connection_made(MemoryTransport(sock))  # type: ignore[arg-type]
    upstream.idle_since = time.monotonic()
    pool._idle.append(upstream)  # as if a first request had left it there

    def step() -> None:
        connection.data_received(REQUEST)
        upstream.data_received(GATEWAY_ANSWER)

    return step, client


def engine_target() -> Target:
    async def never(_: Exchange) -> None:
        raise AssertionError("the lane answers every request")

    def lane(request: LaneRequest) -> bool:
        request.respond(200, (("Content-Type", RESPONSE_MEDIA_TYPE),), ANSWER)
        return True

    client = MemoryTransport()
    connection = EngineServer(never, EngineLimits(8, 30.0, 30.0), lane=lane).factory()
    connection.connection_made(client)  # type: ignore[arg-type]
    return lambda: connection.data_received(REQUEST), client


def pfloor_target() -> Target:
    pool = _Pool("http://127.0.0.1:9/.well-known/ohttp-gateway")
    client, upstream, answers = _Client(pool), _Upstream(pool), MemoryTransport()
    client.connection_made(answers)  # type: ignore[arg-type]
    upstream.connection_made(MemoryTransport())  # type: ignore[arg-type]
    pool.idle.append(upstream)

    def step() -> None:
        client.data_received(REQUEST)
        upstream.data_received(GATEWAY_ANSWER)

    return step, answers


def _check_answered(name: str, answers: MemoryTransport, count: int) -> None:
    # Every request answered, the last one whole: a path that stopped answering (a lane that
    # declines and leaves the request to a task this loop never runs) would time faster.
    last = answers.written[-1] if answers.written else b""
    if len(answers.written) != count or not last.endswith(ANSWER):
        raise RuntimeError(f"{name}: {len(answers.written)} answers of {count}, last {last[:60]!r}")


async def measure(requests: int, rounds: int) -> dict[str, tuple[float, float]]:
    app = create_app(RelayConfig(gateways=parse_gateways(("http://127.0.0.1:9/",))))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with _socket_pair() as sock:
            targets = {"relay": await relay_target(app, sock), "engine": engine_target(),
                       "pfloor": pfloor_target()}
            results = time_interleaved({name: step for name, (step, _) in targets.items()},
                                       requests, rounds)
            for name, (_, answers) in targets.items():
                _check_answered(name, answers, requests * rounds)
            return results
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = uvloop.run(measure(args.requests, args.rounds))
    print(f"{'target':8} {'us/request median (min)':>24}")
    for name, (median, minimum) in results.items():
        print(f"{name:8} {median:15.2f} ({minimum:.2f})")
    relay, pfloor = results["relay"][0], results["pfloor"][0]
    print(f"relay/pfloor {relay / pfloor:.2f}x, {relay - pfloor:.2f} us/request above pfloor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
