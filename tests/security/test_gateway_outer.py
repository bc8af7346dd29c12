"""The real `ohttp gateway` before decapsulation (checklist D2 G1-G12, A2, D5 K1-K4).

Every answer here is a plain (unencapsulated) status: 4xx for anything invalid, never 5xx
(RFC 9458 §5.2).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import struct
from pathlib import Path

import pytest

from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.chunked import ChunkedRequestEncoder
from ohttp.encapsulation import encapsulate_request
from tests.support import LOOPBACK, free_port, ohttp_process

from .conftest import (
    GATEWAY_PATH,
    HTTP_TIMEOUT,
    Gateway,
    Relay,
    post_ohttp,
    raw_exchange,
    request,
    seal,
    status_of,
)

PROBLEM_OHTTP_KEY = "https://iana.org/assignments/http-problem-types#ohttp-key"
X25519, HKDF_SHA256, AES_128_GCM = 0x0020, 0x0001, 0x0001
N_ENC, N_TAG = 32, 16

# X25519 public values of small order, canonical and not (RFC 7748 §5 masks the top bit),
# all giving an all-zero shared secret that RFC 9180 §7.1.4 requires to be rejected.
SMALL_ORDER_POINTS = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ec" + "ff" * 30 + "7f"),  # p - 1
    bytes.fromhex("ed" + "ff" * 30 + "7f"),  # p
    bytes.fromhex("ee" + "ff" * 30 + "7f"),  # p + 1
    bytes(31) + bytes([0x80]),  # 0 with the (ignored) top bit set
    bytes.fromhex("cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"),
]


def header(
    key_id: int = 1, kem: int = X25519, kdf: int = HKDF_SHA256, aead: int = AES_128_GCM
) -> bytes:
    return struct.pack("!BHHH", key_id, kem, kdf, aead)  # RFC 9458 §4.1


def assert_opaque_key_problem(status: int, body: bytes) -> None:
    # RFC 9458 §5.3 / §6.4: one answer for every decapsulation failure (checklist C8).
    assert status == 422
    assert json.loads(body)["type"] == PROBLEM_OHTTP_KEY


# --- G1: methods and media types ----------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_g1_other_methods_get_405(gateway: Gateway, method: str) -> None:
    reply = request(gateway.port, method, GATEWAY_PATH, b"x", {"Content-Type": "message/ohttp-req"})
    assert reply.status == 405


@pytest.mark.parametrize(
    "content_type",
    [None, "application/octet-stream", "message/ohttp-req-x", "message/ohttp-res",
     "message/ohttp-req; charset=utf-8", "message/ohttp-reqmessage/ohttp-req", " message/ohttp"],
)  # fmt: skip
def test_g1_wrong_media_type_gets_415(gateway: Gateway, content_type: str | None) -> None:
    body, _ = seal(gateway, gateway.inner())
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = request(gateway.port, "POST", GATEWAY_PATH, body, headers)
    assert reply.status == 415
    assert gateway.process.process.poll() is None


# --- G2-G7: the encapsulation header ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [bytes(n) for n in range(1, 7)]
    + [header(), header() + bytes(N_ENC - 1), header() + bytes(N_ENC) + bytes(N_TAG - 1)],
    ids=lambda body: f"{len(body)}B",
)
def test_g2_g6_truncated_bodies_get_4xx(gateway: Gateway, body: bytes) -> None:
    reply = post_ohttp(gateway.port, GATEWAY_PATH, body)
    assert 400 <= reply.status < 500, reply.status


def test_g2_empty_body_gets_400(gateway: Gateway) -> None:
    assert post_ohttp(gateway.port, GATEWAY_PATH, b"").status == 400


@pytest.mark.parametrize(
    "prefix",
    [header(key_id=0), header(key_id=0xFF), header(key_id=2),  # G3 unknown key ids
     header(kem=0x0010), header(kem=0x0000), header(kem=0xFFFF),  # G4 other KEMs
     header(kdf=0x0000), header(kdf=0x0002), header(kdf=0xFFFF),  # G5 KDFs not offered
     header(aead=0x0000), header(aead=0x0003), header(aead=0xFFFF)],  # AEADs incl. export-only
    ids=lambda prefix: prefix.hex(),
)  # fmt: skip
def test_g3_g5_unknown_key_or_suite_gets_opaque_422(gateway: Gateway, prefix: bytes) -> None:
    good, _ = seal(gateway, gateway.inner())
    reply = post_ohttp(gateway.port, GATEWAY_PATH, prefix + good[7:])
    assert_opaque_key_problem(reply.status, reply.body)


@pytest.mark.parametrize("enc", SMALL_ORDER_POINTS, ids=lambda enc: enc[:4].hex())
def test_a2_17_g7_small_order_enc_gets_4xx(gateway: Gateway, enc: bytes) -> None:
    reply = post_ohttp(gateway.port, GATEWAY_PATH, header() + enc + os.urandom(64))
    assert_opaque_key_problem(reply.status, reply.body)
    assert gateway.process.process.poll() is None


def test_g6_ciphertext_without_a_full_tag_gets_4xx(gateway: Gateway) -> None:
    good, _ = seal(gateway, gateway.inner())
    for cut in (7 + N_ENC, 7 + N_ENC + 1, 7 + N_ENC + N_TAG - 1, len(good) - 1):
        reply = post_ohttp(gateway.port, GATEWAY_PATH, good[:cut])
        assert 400 <= reply.status < 500, (cut, reply.status)


def test_g9_chunked_label_on_a_plain_request_gets_422(gateway: Gateway) -> None:
    # Valid HPKE, but sealed with the chunked info label "message/bhttp chunked request".
    encoder = ChunkedRequestEncoder(gateway.key.config)
    message = bhttp.encode_request(gateway.inner())
    body = encoder.header() + encoder.final(message)[1:]  # drop the final-chunk indicator
    reply = post_ohttp(gateway.port, GATEWAY_PATH, body)
    assert_opaque_key_problem(reply.status, reply.body)


# --- G10: size limits on the real listener -------------------------------------------------


def test_g10_content_length_over_limit_gets_413_before_the_body(gateway: Gateway) -> None:
    head = (
        f"POST {GATEWAY_PATH} HTTP/1.1\r\nHost: gw\r\nContent-Type: message/ohttp-req\r\n"
        f"Content-Length: {2 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer, _ = raw_exchange(gateway.port, head, until=b"\r\n\r\n")  # body never sent
    assert status_of(answer) == 413


def test_g10_chunked_body_over_limit_gets_413(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=HTTP_TIMEOUT)
    try:
        pieces = (bytes(64 * 1024) for _ in range(20))  # 1.25 MiB > --max-body 1 MiB
        conn.request(
            "POST",
            GATEWAY_PATH,
            body=pieces,
            encode_chunked=True,
            headers={"Content-Type": "message/ohttp-req"},
        )
        assert conn.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gateway answered 413 and closed while we were still sending
    finally:
        conn.close()
    assert gateway.process.process.poll() is None


# --- A2.16: replayed request, different responses -------------------------------------------


def test_a2_16_replayed_request_gets_fresh_nonce_and_ciphertext(gateway: Gateway) -> None:
    # The same ephemeral key twice gives a byte-identical request and two openers. No inner
    # Date, so the replay check does not apply (it is off for Date-less requests).
    ephemeral = os.urandom(32)
    data = bhttp.encode_request(gateway.inner(b"/replay-nonce"))
    first, opener_1 = encapsulate_request(gateway.key.config, data, ephemeral_private_key=ephemeral)
    again, opener_2 = encapsulate_request(gateway.key.config, data, ephemeral_private_key=ephemeral)
    assert first == again
    reply_1 = post_ohttp(gateway.port, GATEWAY_PATH, first)
    reply_2 = post_ohttp(gateway.port, GATEWAY_PATH, again)
    assert reply_1.status == reply_2.status == 200
    nonce_length = 16  # max(Nn, Nk) for AES-128-GCM (RFC 9458 §4.4)
    assert reply_1.body[:nonce_length] != reply_2.body[:nonce_length]
    assert reply_1.body[nonce_length:] != reply_2.body[nonce_length:]
    assert bhttp.decode_response(opener_1.open(reply_1.body)).status == 200
    assert bhttp.decode_response(opener_2.open(reply_2.body)).status == 200


# --- G8 / G12: bit flips and random bytes ---------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fuzz_bodies(gateway: Gateway, rng: random.Random, count: int) -> list[bytes]:
    """Half random bytes (some behind a valid header), half single bit flips of a valid
    request (G8: any flip in key id, suite, enc or ciphertext)."""
    valid, _ = seal(gateway, gateway.inner(b"/fuzz", content=b"payload" * 20))
    bodies = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            bodies.append(rng.randbytes(rng.randrange(0, 400)))
        elif kind == 1:
            bodies.append(header() + rng.randbytes(rng.randrange(0, 200)))
        else:
            flipped = bytearray(valid)
            bit = rng.randrange(len(valid) * 8)
            flipped[bit // 8] ^= 1 << (bit % 8)
            bodies.append(bytes(flipped))
    return [body for body in bodies if body]  # the empty body is G2's


def send_all(gateway: Gateway, bodies: list[bytes]) -> dict[int, int]:
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=HTTP_TIMEOUT)
    try:
        for body in bodies:
            status = post_ohttp(gateway.port, GATEWAY_PATH, body, connection=conn).status
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        conn.close()
    return statuses


def test_g12_random_bodies_and_bit_flips_only_get_4xx(gateway: Gateway) -> None:
    rng = random.Random(9458)
    pid = gateway.process.pid
    send_all(gateway, fuzz_bodies(gateway, rng, 300))  # warm-up: caches, allocator arenas
    before = rss_kib(pid)
    statuses = send_all(gateway, fuzz_bodies(gateway, rng, 3000))
    after = rss_kib(pid)
    assert all(400 <= status < 500 for status in statuses), statuses
    assert gateway.process.process.poll() is None
    assert after - before < 16 * 1024, (before, after)  # roughly flat: well under 16 MiB
    assert request(gateway.port, "GET", "/healthz").status == 200


# --- K1-K4: the key configuration document --------------------------------------------------


def strict_parse_key_configs(data: bytes) -> list[tuple[int, int, bytes, list[tuple[int, int]]]]:
    """An independent strict parser of application/ohttp-keys (RFC 9458 §3.1-3.2)."""
    configs = []
    offset = 0
    assert data, "empty key list"
    while offset < len(data):
        assert offset + 2 <= len(data), "truncated length prefix"
        (length,) = struct.unpack_from("!H", data, offset)
        offset += 2
        end = offset + length
        assert end <= len(data), "length prefix past the end"
        key_id, kem = struct.unpack_from("!BH", data, offset)
        assert kem == X25519
        public_key = data[offset + 3 : offset + 3 + 32]
        position = offset + 3 + 32
        (suites_length,) = struct.unpack_from("!H", data, position)
        assert 4 <= suites_length <= 65532 and suites_length % 4 == 0
        position += 2
        suites = [struct.unpack_from("!HH", data, position + i) for i in range(0, suites_length, 4)]
        assert position + suites_length == end, "config length does not match its content"
        configs.append((key_id, kem, public_key, suites))
        offset = end
    return configs


CLIENT_VARIANTS = [
    {},
    {"Accept": "application/ohttp-keys"},
    {"Accept": "*/*", "User-Agent": "curl/8.0", "Cookie": "id=client-1"},
    {"Accept-Language": "fr", "X-Forwarded-For": "192.0.2.7", "Authorization": "Bearer a"},
    {"If-None-Match": '"x"', "Accept-Encoding": "gzip, br", "Origin": "https://a.example"},
]


def fetch_keys(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, str, str]:
    reply = request(port, "GET", path, None, headers)
    return (
        reply.status,
        reply.body,
        reply.header("Content-Type") or "",
        reply.header("Cache-Control") or "",
    )


def test_k1_k2_k4_keys_identical_strict_and_cacheable(gateway: Gateway, relay: Relay) -> None:
    answers = [fetch_keys(gateway.port, GATEWAY_PATH, headers) for headers in CLIENT_VARIANTS]
    # Through the relay's key mirror too: the same bytes (RFC 9540 §7.1).
    answers += [fetch_keys(relay.port, "/real/ohttp-keys", headers) for headers in CLIENT_VARIANTS]
    assert {status for status, *_ in answers} == {200}
    assert len({body for _, body, *_ in answers}) == 1
    assert {content_type for *_, content_type, _ in answers} == {"application/ohttp-keys"}
    for *_, cache_control in answers:
        directives = [d.strip().lower() for d in cache_control.split(",")]
        max_age = [int(d[8:]) for d in directives if d.startswith("max-age=")]
        assert max_age and max_age[0] > 0, cache_control
        assert "no-store" not in directives and "private" not in directives
        assert "no-cache" not in directives
    ((key_id, _, public_key, suites),) = strict_parse_key_configs(answers[0][1])
    config = gateway.key.config
    assert (key_id, public_key) == (config.key_id, config.public_key)
    assert suites == [(int(s.kdf), int(s.aead)) for s in config.suites]


def test_k3_restart_with_the_same_key_file_serves_the_same_keys(
    gateway: Gateway, tmp_path: Path
) -> None:
    save_key_file(tmp_path / "keys.json", [gateway.key], force=True)
    port = free_port()
    args = [
        "gateway",
        "--keys",
        str(tmp_path / "keys.json"),
        "--listen",
        f"{LOOPBACK}:{port}",
        "--backend",
        "echo",
    ]
    with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "gw.log"):
        restarted = fetch_keys(port, GATEWAY_PATH, {})[1]
    assert restarted == fetch_keys(gateway.port, GATEWAY_PATH, {})[1]


# --- E.3 / C.3: a request head that never ends ----------------------------------------------

HEAD_DEADLINE = 11.0  # the relay's default --header-timeout (10 s) plus a margin


def test_e3_partial_request_head_is_cut_off(gateway: Gateway) -> None:
    with socket.create_connection((LOOPBACK, gateway.port), timeout=HEAD_DEADLINE) as sock:
        sock.sendall(f"POST {GATEWAY_PATH} HTTP/1.1\r\nHo".encode())
        try:
            sock.recv(1024)  # b"" (closed) or a 408: cut off either way
            closed = True
        except TimeoutError:
            closed = False
    assert closed
