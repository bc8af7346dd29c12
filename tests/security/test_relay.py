"""The real `ohttp relay` forwarding into a recording gateway (checklist D1 R1-R3, R7-R10, R14,
A4.27-A4.34).

The recorder is the relay's upstream at ``/gw``: it stores every request and answers with
fields (Set-Cookie, Server, X-Debug) that must never reach the client.
"""

from __future__ import annotations

import gzip
import http.client
import os

import pytest

from ohttp import bhttp
from tests.support import LOOPBACK

from .conftest import (
    HTTP_TIMEOUT,
    LEAKY_HEADERS,
    RELAY_UPSTREAM_PATH,
    Gateway,
    Relay,
    Seen,
    raw_exchange,
    request,
    seal,
    status_of,
)

OHTTP_REQ = {"Content-Type": "message/ohttp-req"}
# What the relay may send upstream (RFC 9458 §6.2): content type, framing, Host, and the
# incremental marker of chunked OHTTP; no credential is configured in this stack.
ALLOWED_UPSTREAM = {b"host", b"content-type", b"content-length", b"transfer-encoding",
                    b"incremental"}  # fmt: skip
IDENTIFYING = {
    "Cookie": "session=client-cookie-91",
    "Authorization": "Bearer client-token-91",
    "Proxy-Authorization": "Basic Y2xpZW50OjkxOTE=",
    "User-Agent": "client-agent/91",
    "Referer": "https://client.example/page-91",
    "Origin": "https://client.example",
    "Accept-Language": "fr-CA",
    "X-Forwarded-For": "198.51.100.91",
    "Forwarded": "for=198.51.100.91",
    "Via": "1.1 client-proxy-91",
    "X-Real-IP": "198.51.100.91",
    "True-Client-IP": "198.51.100.91",
    "CF-Connecting-IP": "198.51.100.91",
    "Connection": "X-Secret, keep-alive",
    "X-Secret": "hop-by-hop-91",
    "Keep-Alive": "timeout=91",
    "TE": "trailers",
    "Accept-Encoding": "gzip",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "DNT": "1",
    **{f"X-Random-{i}": f"value-{i}-91" for i in range(50)},
}


def _is_key_mirror_fetch(seen: Seen) -> bool:
    headers = {name.lower(): value for name, value in seen.headers}
    return seen.method == "GET" and headers.get(b"accept") == b"application/ohttp-keys"


def forwarded(relay: Relay) -> int:
    """Requests the recording gateway saw, less the relay's own key-mirror refreshes (which
    run in the background and may land at any time)."""
    return sum(not _is_key_mirror_fetch(seen) for seen in relay.upstream.snapshot())


def upstream_posts(relay: Relay) -> list[Seen]:
    return [s for s in relay.upstream.snapshot()
            if s.path_qs.startswith(RELAY_UPSTREAM_PATH) and s.method == "POST"]  # fmt: skip


# --- R1-R3: what the relay refuses itself ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_r1_other_methods_are_refused_and_not_forwarded(relay: Relay, method: str) -> None:
    before = forwarded(relay)
    reply = request(relay.port, method, "/", b"abc", OHTTP_REQ)
    assert reply.status == 405
    assert forwarded(relay) == before


@pytest.mark.parametrize(
    "content_type",
    [None, "application/octet-stream", "message/ohttp-req-x", "message/ohttp-res",
     "message/ohttp-req; x=1", "text/message/ohttp-req"],
)  # fmt: skip
def test_r2_wrong_media_type_is_refused(relay: Relay, content_type: str | None) -> None:
    before = len(upstream_posts(relay))
    headers = {} if content_type is None else {"Content-Type": content_type}
    assert request(relay.port, "POST", "/", b"abc", headers).status in (400, 415)
    assert len(upstream_posts(relay)) == before


def test_r3_empty_body_is_refused(relay: Relay) -> None:
    before = len(upstream_posts(relay))
    assert request(relay.port, "POST", "/", b"", OHTTP_REQ).status == 400
    assert len(upstream_posts(relay)) == before


# --- R7-R8, A4.28-A4.32: nothing identifying goes upstream ----------------------------------


def test_r7_r8_only_the_allowlist_reaches_the_gateway(relay: Relay) -> None:
    body = os.urandom(3000)
    conn = http.client.HTTPConnection(LOOPBACK, relay.port, timeout=HTTP_TIMEOUT)
    try:
        conn.connect()
        assert conn.sock is not None
        client_port = str(conn.sock.getsockname()[1])
        conn.request("POST", "/", body=body, headers={**OHTTP_REQ, **IDENTIFYING})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, body)  # bytes in == bytes out
    finally:
        conn.close()
    (seen,) = [s for s in upstream_posts(relay) if s.body == body]
    names = {name.lower() for name, _ in seen.headers}
    assert names <= ALLOWED_UPSTREAM, names - ALLOWED_UPSTREAM
    values = b"\n".join(value for name, value in seen.headers if name.lower() != b"host")
    for marker in (b"91", client_port.encode(), LOOPBACK.encode()):
        assert marker not in values
    assert seen.path_qs == RELAY_UPSTREAM_PATH  # nothing in the URL either


# --- R9, A4.34: fixed mapping, no client-chosen target --------------------------------------


@pytest.mark.parametrize(
    "target",
    ["/other", "/127.0.0.1", "/localhost", "/gw", "/real/../gw", "//evil.example/",
     "http://evil.example/", f"http://{LOOPBACK}:1/", "/%2e%2e/gw", "/real/x"],
)  # fmt: skip
def test_r9_unconfigured_targets_forward_nothing(relay: Relay, target: str) -> None:
    before = forwarded(relay)
    raw = (
        f"POST {target} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: message/ohttp-req\r\n"
        "Content-Length: 3\r\nConnection: close\r\n\r\nabc"
    ).encode()
    answer, _ = raw_exchange(relay.port, raw)
    assert status_of(answer) in (400, 404, 421), answer[:100]
    assert forwarded(relay) == before


def test_r9_host_header_cannot_choose_the_gateway(relay: Relay) -> None:
    body = os.urandom(64)
    headers = {**OHTTP_REQ, "Host": "169.254.169.254"}
    assert request(relay.port, "POST", "/", body, headers).body == body
    (seen,) = [s for s in upstream_posts(relay) if s.body == body]
    hosts = [value for name, value in seen.headers if name.lower() == b"host"]
    assert hosts == [relay.upstream.authority.encode()]


# --- R10: request smuggling and malformed framing -------------------------------------------


HEAD = b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\nConnection: close\r\n"
CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"
SMUGGLING = {
    "cl_and_te": HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_ABC,
    "te_and_cl": HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED_ABC,
    "duplicate_cl": HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "cl_list": HEAD + b"Content-Length: 3, 4\r\n\r\nabcd",
    "cl_plus": HEAD + b"Content-Length: +3\r\n\r\nabc",
    "cl_negative": HEAD + b"Content-Length: -3\r\n\r\nabc",
    "cl_hex": HEAD + b"Content-Length: 0x3\r\n\r\nabc",
    "obs_fold": HEAD + b"X-Folded: a\r\n b\r\nContent-Length: 3\r\n\r\nabc",
    "obs_fold_cl": HEAD + b"Content-Length:\r\n 3\r\n\r\nabc",
    "chunk_size_zz": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_negative": HEAD + b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
    "chunk_size_0x": HEAD + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "chunk_size_space": HEAD + b"Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n",
    "te_not_chunked": HEAD + b"Transfer-Encoding: gzip\r\n\r\nabc",
    "te_chunked_not_last": HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "nul_in_value": HEAD + b"X-Nul: a\x00b\r\nContent-Length: 3\r\n\r\nabc",
    "space_before_colon": HEAD + b"Content-Length : 3\r\n\r\nabc",
}


@pytest.mark.parametrize("raw", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_r10_malformed_framing_gets_400_and_forwards_nothing(relay: Relay, raw: bytes) -> None:
    before = forwarded(relay)
    answer, _ = raw_exchange(relay.port, raw)
    assert status_of(answer) in (400, 501), answer[:120]
    assert forwarded(relay) == before
    assert relay.process.process.poll() is None


# --- R14, A4.32: the answer back ------------------------------------------------------------


def test_r14_gateway_fields_do_not_reach_the_client(relay: Relay) -> None:
    body = os.urandom(200)
    reply = request(relay.port, "POST", "/", body, OHTTP_REQ)
    assert (reply.status, reply.body) == (200, body)
    names = {name.lower() for name, _ in reply.headers}
    assert "set-cookie" not in names and "x-debug" not in names
    values = " ".join(value for _, value in reply.headers)
    for value in LEAKY_HEADERS.values():
        assert value not in values
    assert reply.header("Content-Type") == "message/ohttp-res"


def test_end_to_end_through_the_relay_to_the_real_gateway(relay: Relay, gateway: Gateway) -> None:
    body, opener = seal(gateway, gateway.inner(b"/through-relay"))
    reply = request(relay.port, "POST", "/real", body, OHTTP_REQ)
    assert reply.status == 200
    inner = bhttp.decode_response(opener.open(reply.body))
    assert inner.status == 200
    (seen,) = [s for s in gateway.origin.snapshot() if s.path_qs == "/through-relay"]
    # The target sees the gateway, never the relay's client (RFC 9458 §6.3).
    assert {name.lower() for name, _ in seen.headers} <= {b"host", b"content-length"}


# --- R4, R11: size before reading, bodies never decoded -------------------------------------


def test_r4_content_length_over_limit_gets_413_before_the_body(relay: Relay) -> None:
    before = forwarded(relay)
    head = (
        b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
        b"Content-Length: 5000000\r\n\r\n"
    )  # over --max-body-bytes 1 MiB; no body sent
    answer, _ = raw_exchange(relay.port, head, until=b"\r\n\r\n")
    assert status_of(answer) == 413
    assert forwarded(relay) == before


def test_r11_gzip_body_is_refused_unread_and_never_forwarded(relay: Relay) -> None:
    # RFC 9110 §8.4: an encapsulated request is never content-coded (415, nothing forwarded).
    bomb = gzip.compress(bytes(4 * 1024 * 1024))  # 4 MiB of zeros in about 4 KiB
    headers = {**OHTTP_REQ, "Content-Encoding": "gzip"}
    reply = request(relay.port, "POST", "/", bomb, headers)
    assert reply.status == 415
    assert not [s for s in upstream_posts(relay) if s.body == bomb]
