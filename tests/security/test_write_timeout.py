"""Issue 13, finding 2: clients that never read a response, against real processes.

64 clients send a chunked OHTTP request through ``ohttp relay`` to ``ohttp gateway``, whose
origin streams a large response, and then never read. Past ``--write-timeout`` the responses
are abandoned: the relay's connections to the gateway and the gateway's connections to the
origin fall back to no more than the relay pool's idle size.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.chunked import ChunkedRequestEncoder
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, established_to, free_port, ohttp_process

from .conftest import GATEWAY_PATH, ThreadedServer

CLIENTS = 64
WRITE_TIMEOUT = 2.0
POOL_IDLE = 4
PIECE = b"z" * 65536
# 64 MiB per response, more than the socket buffers between a client and the origin hold
# (Linux autotunes them to some 16 MiB on loopback): the response can only end by abandonment.
PIECES = 1024


async def _large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    try:
        for _ in range(PIECES):
            await response.write(PIECE)
    except ConnectionError:  # the gateway let go of it: what the test waits for
        return response
    await response.write_eof()
    return response


@pytest.fixture
def origin() -> Iterator[int]:
    app = web.Application()
    app.router.add_get("/large", _large)
    server = ThreadedServer(app, free_port())
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)  # polling kernel state: no event to await
    return condition()


def _silent_client(port: int, body: bytes) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # take almost nothing
    sock.connect((LOOPBACK, port))
    head = (
        f"POST / HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: message/ohttp-chunked-req\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def test_non_reading_clients_release_upstream_and_origin(tmp_path: Path, origin: int) -> None:
    key = GatewayKey.generate(1)
    save_key_file(tmp_path / "keys.json", [key], force=True)
    gw_port, relay_port = free_port(), free_port()
    gateway_args = [
        "gateway", "--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{gw_port}",
        "--backend", f"http://{LOOPBACK}:{origin}", "--write-timeout", str(WRITE_TIMEOUT),
        "--max-body", str(1 << 20),
    ]  # fmt: skip
    relay_args = [
        "relay", "--listen", f"{LOOPBACK}:{relay_port}",
        "--gateway", f"http://{LOOPBACK}:{gw_port}{GATEWAY_PATH}",
        "--write-timeout", str(WRITE_TIMEOUT), "--upstream-pool-size", str(POOL_IDLE),
    ]  # fmt: skip
    inner = bhttp.Request(b"GET", b"http", f"{LOOPBACK}:{origin}".encode(), b"/large", (), b"")
    with (
        ohttp_process(gateway_args, f"http://{LOOPBACK}:{gw_port}/healthz", tmp_path / "g.log"),
        ohttp_process(relay_args, f"http://{LOOPBACK}:{relay_port}/healthz", tmp_path / "r.log"),
    ):
        clients = []
        try:
            for _ in range(CLIENTS):
                encoder = ChunkedRequestEncoder(key.config)
                body = encoder.header() + encoder.final(bhttp.encode_request(inner))
                clients.append(_silent_client(relay_port, body))
            # While the clients hold their responses, upstream and origin connections are held.
            held: list[int] = []

            def peak() -> bool:
                held.append(established_to(origin))
                return max(held) >= CLIENTS // 2

            _wait_for(peak, WRITE_TIMEOUT)
            assert max(held) >= CLIENTS // 4, held
            released = _wait_for(
                lambda: established_to(gw_port) <= POOL_IDLE
                and established_to(origin) <= POOL_IDLE,
                WRITE_TIMEOUT + 15,  # a loaded machine fills some buffers late
            )
            assert released, (established_to(gw_port), established_to(origin))
        finally:
            for sock in clients:
                sock.close()
    # Finding 11: a disconnect is a normal event, at info with a fixed code, never an error.
    relay_log = (tmp_path / "r.log").read_text()
    gateway_log = (tmp_path / "g.log").read_text()
    # (the gateway's own write timeout, on the relay's stalled connection, may end a few first)
    assert relay_log.count('"code": "write_stalled"') >= CLIENTS // 2
    for log in (relay_log, gateway_log):
        assert '"level": "error"' not in log and "Traceback" not in log
