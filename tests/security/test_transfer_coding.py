"""Request transfer codings (RFC 9112 §6.1) at the real gateway and the real relay, in raw bytes.

Only exactly ``chunked`` is understood. Any other list is never decoded as chunked: the answer
is 501 (our handler), or aiohttp's own 400 where its parser refuses the head before any
handler runs, and the connection is closed either way.
"""

from __future__ import annotations

import asyncio

import pytest

from ohttp import bhttp
from tests.support import LOOPBACK

from .conftest import GATEWAY_PATH, HTTP_TIMEOUT, Gateway, Relay, seal, status_of

# aiohttp's C parser (llhttp) takes a list whose last coding is "chunked" as chunked framing and
# hands the request to the handler, which answers 501 unread. llhttp itself refuses, with its own
# "HTTP/1.0 400 Bad Request" before any handler runs: "chunked" twice (invalid header value) and
# a list not ending in "chunked" ("identity": invalid once body bytes follow the head).
REFUSED = {
    "gzip, chunked": 501,
    "deflate, chunked": 501,
    "chunked, chunked": 400,
    "x-custom, chunked": 501,
    "identity": 400,
}


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def _head(path: str, coding: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: message/ohttp-req\r\n"
        f"Transfer-Encoding: {coding}\r\n\r\n"
    ).encode()


async def _exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send ``data``; read until the server closes. Returns the bytes and whether it closed."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(data)
        await writer.drain()
        try:
            async with asyncio.timeout(HTTP_TIMEOUT):
                answer = await reader.read(-1)  # returns only at EOF: the server closed
        except TimeoutError:
            return b"", False
        return answer, True
    finally:
        writer.close()


def _run(port: int, data: bytes) -> tuple[bytes, bool]:
    return asyncio.run(_exchange(port, data))


@pytest.mark.parametrize(("coding", "status"), REFUSED.items())
def test_gateway_refuses_transfer_coding(gateway: Gateway, coding: str, status: int) -> None:
    body, _ = seal(gateway, gateway.inner(b"/te"))
    before = gateway.origin.count("/te")
    answer, closed = _run(gateway.port, _head(GATEWAY_PATH, coding) + _chunked(body))
    assert (status_of(answer), closed) == (status, True)
    assert answer.count(b"HTTP/1.") == 1  # the body was not taken as a second request
    assert gateway.origin.count("/te") == before  # never decrypted nor forwarded


@pytest.mark.parametrize(("coding", "status"), REFUSED.items())
def test_relay_refuses_transfer_coding(relay: Relay, coding: str, status: int) -> None:
    before = relay.upstream.count("/gw")
    answer, closed = _run(relay.port, _head("/", coding) + _chunked(b"sealed"))
    assert (status_of(answer), closed) == (status, True)
    assert answer.count(b"HTTP/1.") == 1
    assert relay.upstream.count("/gw") == before  # nothing forwarded


def test_plain_chunked_works_at_both(gateway: Gateway, relay: Relay) -> None:
    body, opener = seal(gateway, gateway.inner(b"/te-ok"))
    close = "Connection: close\r\n"
    head = _head(GATEWAY_PATH, "chunked").replace(b"\r\n\r\n", f"\r\n{close}\r\n".encode())
    answer, _ = _run(gateway.port, head + _chunked(body))
    assert status_of(answer) == 200
    sealed = answer.split(b"\r\n\r\n", 1)[1]
    assert bhttp.decode_response(opener.open(sealed)).status == 200
    head = _head("/", "chunked").replace(b"\r\n\r\n", f"\r\n{close}\r\n".encode())
    answer, _ = _run(relay.port, head + _chunked(b"sealed"))
    assert status_of(answer) == 200
    assert answer.endswith(b"sealed")
