"""What the real processes write to their logs (checklist Part E.1, E.2, A8.60).

Each test sends a battery of valid and malformed exchanges carrying a canary string in every
place a client controls (headers, request line, body, chunk sizes, inner Binary HTTP), notes
the source port of each connection, then reads the process log: neither the canary nor any
client source port nor a traceback may appear. Relay and gateway logs must not name the
client; aiohttp's own "Error handling request from <peer>" records included.
"""

from __future__ import annotations

import re
import socket
import time

from ohttp import bhttp
from tests.support import LOOPBACK

from .conftest import (
    GATEWAY_PATH,
    HTTP_TIMEOUT,
    Gateway,
    Relay,
    exchange,
    log_text,
    raw_exchange,
    request,
    seal,
)

CANARY = "cnry5e1f0a"
C = CANARY.encode()
OHTTP_HEAD = b"Content-Type: message/ohttp-req\r\nConnection: close\r\n"


def malformed_http(path: bytes) -> list[bytes]:
    """HTTP/1.1 inputs that aiohttp's parser or the application refuses, each with the canary."""
    head = b"POST " + path + b" HTTP/1.1\r\nHost: " + C + b"\r\n" + OHTTP_HEAD
    return [
        head
        + b"User-Agent: "
        + C
        + b"\r\nCookie: id="
        + C
        + b"\r\nX-Forwarded-For: "
        + C
        + b"\r\nContent-Length: 10\r\n\r\n"
        + C,
        b"POST /" + C + b" HTTP/1.1\r\nHost: r\r\n" + OHTTP_HEAD + b"Content-Length: 0\r\n\r\n",
        head + b"Bad Name\x01" + C + b": v\r\n\r\n",
        head + b"Transfer-Encoding: chunked\r\n\r\n" + C + b"\r\nabc\r\n0\r\n\r\n",
        head + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + C,
        head + b"X-Long: " + C * 1000 + b"\r\nContent-Length: 0\r\n\r\n",
        head + b"".join(b"X-%d: " % i + C + b"\r\n" for i in range(300)) + b"\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + C * 4,  # a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + C,  # HTTP/2 prior knowledge
        C + b" / HTTP/1.1\r\nHost: r\r\n\r\n",  # unknown method
        b"POST /" + C + b"\x00 HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9." + C + b"\r\n\r\n",
    ]


def abandon_mid_body(port: int, path: bytes) -> int:
    """Announce 100 body bytes, send 10, reset the connection; returns the source port."""
    with socket.create_connection((LOOPBACK, port), timeout=HTTP_TIMEOUT) as sock:
        source_port = int(sock.getsockname()[1])
        sock.sendall(
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: r\r\n"
            + OHTTP_HEAD
            + b"Content-Length: 100\r\n\r\n"
            + C
        )
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return source_port


def assert_log_is_clean(log: str, ports: list[int]) -> None:
    assert CANARY not in log
    assert "Traceback" not in log
    for port in ports:
        assert not re.search(rf"(?<!\d){port}(?!\d)", log), port
    # The listening line names the server's own address; no line names a peer.
    lines_with_address = [line for line in log.splitlines() if LOOPBACK in line]
    assert all("listening" in line for line in lines_with_address), lines_with_address


def test_e1_e2_relay_logs_never_name_the_client_or_content(relay: Relay, gateway: Gateway) -> None:
    ports = []
    for raw in malformed_http(b"/") + malformed_http(b"/real"):
        ports.append(raw_exchange(relay.port, raw, timeout=3.0)[1])
    ports.append(abandon_mid_body(relay.port, b"/"))
    # Valid traffic through to the real gateway, and garbage that the gateway refuses.
    body, _ = seal(gateway, gateway.inner(b"/" + C, headers=((b"x-canary", C),), content=C))
    headers = {"Content-Type": "message/ohttp-req", "User-Agent": CANARY}
    assert request(relay.port, "POST", "/real", body, headers).status == 200
    assert request(relay.port, "POST", "/real", C * 3, headers).status == 422  # key id 0x63
    time.sleep(0.3)  # let the relay finish writing the records of the reset connection
    log = log_text(relay.process.log_path)
    assert "request error withheld" in log  # the parse errors were logged, without details
    assert_log_is_clean(log, ports)


def test_e1_a8_60_gateway_logs_carry_no_content_or_client(gateway: Gateway) -> None:
    ports = []
    for raw in malformed_http(GATEWAY_PATH.encode()):
        ports.append(raw_exchange(gateway.port, raw, timeout=3.0)[1])
    ports.append(abandon_mid_body(gateway.port, GATEWAY_PATH.encode()))
    # Inner requests with the canary everywhere: valid, invalid Binary HTTP, refused targets,
    # a bad field value, a failing and a hanging target.
    path = b"/" + C
    inner_requests: list[bhttp.Request | bytes] = [
        gateway.inner(path, headers=((b"x-canary", C), (b"cookie", C)), content=C),
        gateway.inner(path, authority=C + b".example"),
        gateway.inner(b"/status/500", headers=((b"x-canary", C),)),
        gateway.inner(b"/hang", headers=((b"x-canary", C),)),
        b"\x00\x04POST\x05https" + C + b"\xff\xff",
        b"\x00\x03GET\x05https\x00\x02/x" + bytes([len(C) + 4]) + b"\x02a\x00" + C,
    ]
    for inner in inner_requests:
        exchange(gateway, inner)
    time.sleep(0.3)
    assert_log_is_clean(log_text(gateway.process.log_path), ports)
