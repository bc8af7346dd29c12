"""Outer Content-Encoding (RFC 9110 §8.4, §15.5.16) at the real gateway and the real relay.

An encapsulated request is never content-coded: any coding but ``identity`` gets a plain 415
before the body is read, so nothing is decompressed or decrypted.
"""

from __future__ import annotations

import gzip
import zlib

import pytest

from ohttp import bhttp

from .conftest import GATEWAY_PATH, Gateway, Relay, Reply, request, seal

REFUSED = ["gzip", "deflate", "br", "GZIP", "gzip, identity", "identity, x-custom"]


def _compressed(coding: str, body: bytes) -> bytes:
    first = coding.split(",", maxsplit=1)[0].strip().lower()
    if first == "gzip":
        return gzip.compress(body)
    if first == "deflate":
        return zlib.compress(body)
    return body  # br and others: the bytes are never looked at


def _post(port: int, path: str, body: bytes, coding: str) -> Reply:
    headers = {"Content-Type": "message/ohttp-req", "Content-Encoding": coding}
    return request(port, "POST", path, body, headers)


def _assert_refused(reply: Reply) -> None:
    assert reply.status == 415
    assert reply.header("Accept-Encoding") == "identity"
    assert (reply.header("Content-Type") or "").startswith("text/plain")


@pytest.mark.parametrize("coding", REFUSED)
def test_gateway_refuses_content_coding(gateway: Gateway, coding: str) -> None:
    body, _ = seal(gateway, gateway.inner(b"/coded"))
    before = gateway.origin.count("/coded")
    reply = _post(gateway.port, GATEWAY_PATH, _compressed(coding, body), coding)
    _assert_refused(reply)
    assert reply.body == b""  # the fixed plain body
    assert gateway.origin.count("/coded") == before  # never decrypted nor forwarded


def test_gateway_accepts_identity(gateway: Gateway) -> None:
    body, opener = seal(gateway, gateway.inner(b"/identity"))
    reply = _post(gateway.port, GATEWAY_PATH, body, "identity")
    assert reply.status == 200
    assert bhttp.decode_response(opener.open(reply.body)).status == 200


@pytest.mark.parametrize("coding", REFUSED)
def test_relay_refuses_content_coding(relay: Relay, coding: str) -> None:
    before = relay.upstream.count("/gw")
    reply = _post(relay.port, "/", _compressed(coding, b"sealed bytes"), coding)
    _assert_refused(reply)
    assert reply.body == b"unsupported content coding\n"
    assert relay.upstream.count("/gw") == before  # nothing forwarded


def test_relay_accepts_identity(relay: Relay) -> None:
    reply = _post(relay.port, "/", b"sealed bytes", "identity")
    assert reply.status == 200
    assert reply.body == b"sealed bytes"  # the upstream echoes the body unchanged
