"""Issue 13, finding 8: error pages are fixed texts at the real gateway and relay.

aiohttp's own pages for a request that fails to parse quote the bytes that failed and name
aiohttp in ``Server``; ours are the status and its reason phrase only.
"""

from __future__ import annotations

import pytest

from .conftest import Gateway, Relay, raw_exchange

MARKER = "zq7marker"
MALFORMED = [
    f"GET /{MARKER}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    f"G{MARKER}\x7f / HTTP/1.1\r\nHost: x\r\n\r\n",
    f"GET / HTTP/1.1\r\nHost: x\r\nX-{MARKER}: a\x00b\r\n\r\n",
    f"GET / HTTP/1.1\r\nHost: x\r\n{MARKER} bad header\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("server", ["gateway", "relay"])
def test_parse_errors_get_a_fixed_page(
    raw: str, server: str, gateway: Gateway, relay: Relay
) -> None:
    port = gateway.port if server == "gateway" else relay.port
    answer, _ = raw_exchange(port, raw.encode("latin-1"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:200]
    assert body == b"400 Bad Request\n"
    assert MARKER.encode() not in answer
    assert b"\r\nserver:" not in head.lower()
