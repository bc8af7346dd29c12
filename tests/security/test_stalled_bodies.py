"""Issue 13, finding 1: stalled request bodies, at a real gateway and a real relay process.

512 connections each send a POST head with a Content-Length and then nothing. A legitimate
request on a fresh connection must still be answered within a second (the stalled ones hold
no in-flight slot), and every stalled connection must be closed once ``--body-timeout`` passed.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.encapsulation import encapsulate_request
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, free_port, ohttp_process

from .conftest import GATEWAY_PATH, RELAY_UPSTREAM_PATH, Recorder, post_ohttp

STALLED = 512
BODY_TIMEOUT = 2.0
SLACK = 1.5  # scheduling on a shared 2-core machine


def _stall(port: int, path: str) -> list[socket.socket]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: message/ohttp-req\r\n"
        "Content-Length: 4096\r\n\r\n"
    ).encode()
    sockets = []
    for _ in range(STALLED):
        sock = socket.create_connection((LOOPBACK, port), timeout=5)
        sock.sendall(head)
        sockets.append(sock)
    return sockets


def _wait_all_closed(sockets: list[socket.socket], deadline: float) -> int:
    """Read every socket until the server closes it; the number still open at ``deadline``."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_count = len(sockets)
    while open_count and (remaining := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(remaining):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            try:
                data = ready.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                selector.unregister(ready)
                open_count -= 1
    selector.close()
    return open_count


def _check_stalled(port: int, path: str, legit: tuple[str, bytes]) -> None:
    sockets = _stall(port, path)
    try:
        stalled_at = time.monotonic()
        started = time.monotonic()
        reply = post_ohttp(port, legit[0], legit[1])
        assert reply.status == 200, reply
        assert time.monotonic() - started < 1.0
        still_open = _wait_all_closed(sockets, stalled_at + BODY_TIMEOUT + SLACK)
        assert still_open == 0
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def gateway_process(tmp_path: Path, recorder: Recorder) -> Iterator[tuple[int, GatewayKey]]:
    key = GatewayKey.generate(1)
    save_key_file(tmp_path / "keys.json", [key], force=True)
    port = free_port()
    args = [
        "gateway", "--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{port}",
        "--backend", f"http://{recorder.authority}", "--body-timeout", str(BODY_TIMEOUT),
        "--max-in-flight", "256",
    ]  # fmt: skip
    with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "gw.log"):
        yield port, key


def test_gateway_stalled_bodies(gateway_process: tuple[int, GatewayKey]) -> None:
    port, key = gateway_process
    inner = bhttp.Request(b"GET", b"https", b"nowhere.invalid", b"/", (), b"")
    body, _ = encapsulate_request(key.config, bhttp.encode_request(inner))
    # The inner target is not allowed: an encapsulated 403 inside an outer 200 is enough.
    _check_stalled(port, GATEWAY_PATH, (GATEWAY_PATH, body))


def test_relay_stalled_bodies(tmp_path: Path, recorder: Recorder) -> None:
    port = free_port()
    args = [
        "relay", "--listen", f"{LOOPBACK}:{port}",
        "--gateway", f"http://{recorder.authority}{RELAY_UPSTREAM_PATH}",
        "--body-timeout", str(BODY_TIMEOUT),
    ]  # fmt: skip
    with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "relay.log"):
        # Default --max-in-flight is 256: 512 stalled heads would fill it twice over.
        _check_stalled(port, "/", ("/", b"opaque ciphertext"))

