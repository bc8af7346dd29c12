"""The real `ohttp gateway` after decapsulation (checklist D3 I1-I15, A3.22, A6, G11).

Each request is validly encapsulated, so the outer answer is always 200 message/ohttp-res and
the verdict is the inner Binary HTTP status (RFC 9458 §5.2). Inner messages are built byte by
byte here so they can be malformed in exactly one place (RFC 9292 §3).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from email.utils import formatdate

import pytest

from ohttp import bhttp
from ohttp.encapsulation import encapsulate_request

from .conftest import GATEWAY_PATH, LEAKY_HEADERS, Gateway, exchange, post_ohttp, seal

PROBLEM_DATE = "https://iana.org/assignments/http-problem-types#date"
VARINT_SIZES = {1: 0x00, 2: 0x40, 4: 0x80, 8: 0xC0}
MAX_VARINT = 2**62 - 1


def vint(value: int, size: int | None = None) -> bytes:
    """A QUIC varint (RFC 9000 §16), minimal unless ``size`` forces a longer encoding."""
    if size is None:
        size = next(s for s in (1, 2, 4, 8) if value < 1 << (8 * s - 2))
    return (value | VARINT_SIZES[size] << (8 * size - 8)).to_bytes(size, "big")


def lv(data: bytes, size: int | None = None) -> bytes:
    return vint(len(data), size) + data


def field_lines(*pairs: tuple[bytes, bytes], size: int | None = None) -> bytes:
    return b"".join(lv(name, size) + lv(value, size) for name, value in pairs)


def known_request(
    gateway: Gateway,
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    authority: bytes | None = None,
    headers: bytes = b"",
    content: bytes = b"",
    trailers: bytes = b"",
    framing: bytes = b"\x00",
    size: int | None = None,
) -> bytes:
    """A known-length request (RFC 9292 §3.1) with every section spelled out."""
    target = gateway.origin.authority.encode() if authority is None else authority
    control = b"".join(lv(part, size) for part in (method, b"https", target, path))
    return framing + control + lv(headers, size) + lv(content, size) + lv(trailers, size)


def unique_path() -> bytes:
    return b"/audit/" + uuid.uuid4().hex.encode()


def inner_status(gateway: Gateway, inner: bytes) -> int:
    return exchange(gateway, inner)[1].status


# --- I1-I7: framing, lengths, truncation, padding --------------------------------------------


@pytest.mark.parametrize(
    "framing", [b"\x01", b"\x03", b"\x04", b"\x3f", b"\x40\x40"], ids=lambda f: f.hex()
)
def test_i1_bad_framing_indicator_gets_inner_400(gateway: Gateway, framing: bytes) -> None:
    assert inner_status(gateway, known_request(gateway, framing=framing)) == 400


@pytest.mark.parametrize("where", ["method", "field_section", "content"])
def test_i2_huge_length_gets_inner_4xx_without_allocating(gateway: Gateway, where: str) -> None:
    huge = vint(MAX_VARINT, 8)
    good = known_request(gateway)
    control_end = (
        1
        + len(lv(b"GET"))
        + len(lv(b"https"))
        + len(lv(gateway.origin.authority.encode()))
        + len(lv(b"/"))
    )
    if where == "method":
        inner = b"\x00" + huge + b"GET"
    elif where == "field_section":
        inner = good[:control_end] + huge + b"\x01a\x01b"
    else:
        inner = good[:control_end] + b"\x00" + huge + b"abc"
    assert inner_status(gateway, inner) in (400, 413)
    assert gateway.process.process.poll() is None


@pytest.mark.parametrize("where", ["method", "field_section", "field_name", "content"])
def test_i3_length_past_the_end_gets_inner_400(gateway: Gateway, where: str) -> None:
    headers = field_lines((b"accept", b"*/*"))
    inner = {
        "method": b"\x00" + vint(50) + b"GET",
        "field_section": known_request(gateway)[:-3] + vint(100) + headers,
        "field_name": known_request(gateway, headers=vint(40) + b"acc")[:-2],
        "content": known_request(gateway)[:-2] + vint(1000) + b"short",
    }[where]
    assert inner_status(gateway, inner) == 400


def test_i4_non_minimal_varints_are_accepted(gateway: Gateway) -> None:
    path = unique_path()
    headers = field_lines((b"x-audit", b"non-minimal"), size=8)
    inner = known_request(
        gateway, path, headers=headers, content=b"body", framing=b"\x40\x00", size=8
    )
    assert inner_status(gateway, inner) == 200
    assert gateway.origin.count(path.decode()) == 1


def test_i5_request_ending_after_the_header_section_is_accepted(gateway: Gateway) -> None:
    path = unique_path()
    full = known_request(gateway, path, headers=field_lines((b"accept", b"*/*")))
    truncated = full[:-2]  # drop the empty content and trailer sections (RFC 9292 §3.8)
    assert inner_status(gateway, truncated) == 200
    assert inner_status(gateway, full[:-1]) == 200  # only the trailer section dropped
    assert gateway.origin.count(path.decode()) == 2


@pytest.mark.parametrize("cut", ["inside_name", "inside_value", "inside_content"])
def test_i6_truncation_inside_a_section_gets_inner_400(gateway: Gateway, cut: str) -> None:
    headers = field_lines((b"accept-language", b"en-GB"))
    full = known_request(gateway, headers=headers, content=b"0123456789")
    control_end = len(known_request(gateway)) - 3
    end = {
        "inside_name": control_end + 1 + 1 + 5,
        "inside_value": control_end + 1 + len(headers) - 2,
        "inside_content": len(full) - 1 - 4,
    }[cut]
    assert inner_status(gateway, full[:end]) == 400


def test_a7_49_zero_padding_is_accepted(gateway: Gateway) -> None:
    assert inner_status(gateway, known_request(gateway) + bytes(100)) == 200


def test_i7_non_zero_padding_is_rejected(gateway: Gateway) -> None:
    assert inner_status(gateway, known_request(gateway) + bytes(10) + b"\x01") == 400


# --- I8-I10: fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair",
    [(b"", b"v"), (b"a b", b"v"), (b"a:b", b"v"), (b"a\x00", b"v"), (b"a\x01", b"v"),
     (b"a\x7f", b"v"), (b"a@b", b"v"), (b"(a)", b"v"), (b"\xc3\xa9", b"v"),
     (b"x-v", b"a\rb"), (b"x-v", b"a\nb"), (b"x-v", b"a\x00b"), (b"x-v", b" lead"),
     (b"x-v", b"trail\t")],
    ids=repr,
)  # fmt: skip
def test_i8_invalid_field_gets_inner_400(gateway: Gateway, pair: tuple[bytes, bytes]) -> None:
    path = unique_path()
    inner = known_request(gateway, path, headers=field_lines(pair))
    assert inner_status(gateway, inner) == 400
    assert gateway.origin.count(path.decode()) == 0


def test_i8_uppercase_name_is_rejected_consistently(gateway: Gateway) -> None:
    # ohttp.bhttp's documented choice: upper-case names are malformed (RFC 9113 §8.2.1 via
    # RFC 9292 §3.6), so every such request gets the same 400 and nothing is forwarded.
    path = unique_path()
    for name in (b"X-Audit-Case", b"x-audit-Case", b"COOKIE"):
        inner = known_request(gateway, path, headers=field_lines((name, b"v")))
        assert [inner_status(gateway, inner) for _ in range(2)] == [400, 400]
    assert gateway.origin.count(path.decode()) == 0


@pytest.mark.parametrize(
    "section",
    [field_lines((b":path", b"/x")), field_lines((b":method", b"GET")),
     field_lines((b":authority", b"a")), field_lines((b":scheme", b"https")),
     field_lines((b":status", b"200")), field_lines((b"accept", b"*/*"), (b":x", b"y"))],
    ids=repr,
)  # fmt: skip
def test_i9_pseudo_fields_in_headers_get_inner_400(gateway: Gateway, section: bytes) -> None:
    assert inner_status(gateway, known_request(gateway, headers=section)) == 400


def test_i9_pseudo_field_in_trailers_gets_inner_400(gateway: Gateway) -> None:
    inner = known_request(gateway, trailers=field_lines((b":path", b"/x")))
    assert inner_status(gateway, inner) == 400


@pytest.mark.parametrize("count,name", [(100_000, b"a"), (1000, b"cookie")])
def test_i10_too_many_fields_get_inner_4xx(gateway: Gateway, count: int, name: bytes) -> None:
    path = unique_path()
    headers = field_lines(*[(name, b"v=1")] * count)
    # 413 (MessageTooLargeError) is what the gateway answers; 431 would be more specific.
    status = inner_status(gateway, known_request(gateway, path, headers=headers))
    assert status in (400, 413, 431)
    assert gateway.origin.count(path.decode()) == 0


def test_i10_ten_megabytes_of_fields_are_refused_unread(gateway: Gateway) -> None:
    headers = field_lines((b"x-big", b"v" * (10 * 1024 * 1024)))
    body, _ = seal(gateway, known_request(gateway, headers=headers))
    assert post_ohttp(gateway.port, GATEWAY_PATH, body).status == 413  # over --max-body


# --- I11-I12: tunnels and targets ----------------------------------------------------------


def test_i11_connect_and_upgrade_get_inner_4xx(gateway: Gateway) -> None:
    path = unique_path()
    connect = gateway.inner(path, method=b"CONNECT")
    upgrade = gateway.inner(path, headers=((b"upgrade", b"websocket"),))
    for request in (connect, upgrade):
        status = exchange(gateway, request)[1].status
        assert 400 <= status < 500
    assert gateway.origin.count(path.decode()) == 0


def test_i11_expect_continue_gets_inner_417(gateway: Gateway) -> None:
    path = unique_path()
    request = gateway.inner(
        path, method=b"POST", headers=((b"expect", b"100-continue"),), content=b"x"
    )
    assert exchange(gateway, request)[1].status == 417
    assert gateway.origin.count(path.decode()) == 0


def forbidden_authorities(gateway: Gateway) -> list[bytes]:
    origin = gateway.origin.authority.encode()
    return [b"169.254.169.254", b"localhost", b"localhost:" + origin.split(b":")[1],
            b"[::1]", b"[::1]:" + origin.split(b":")[1], b"127.0.0.1", b"127.0.0.1:1",
            b"evil.example", b"user@" + origin, origin + b"@evil.example",
            origin + b".evil.example", b"127.0.0.1:" + origin.split(b":")[1] + b"0",
            origin.upper() + b"/", b"0x7f.0.0.1:" + origin.split(b":")[1],
            b"2130706433:" + origin.split(b":")[1]]  # fmt: skip


def test_i12_targets_not_allowlisted_get_inner_403(gateway: Gateway) -> None:
    path = unique_path()
    statuses = {
        authority: exchange(gateway, gateway.inner(path, authority=authority))[1].status
        for authority in forbidden_authorities(gateway)
    }
    # No authority at all, a Host field naming another host (RFC 9292 §3.4).
    empty = gateway.inner(path, authority=b"", headers=((b"host", b"169.254.169.254"),))
    statuses[b"host-field"] = exchange(gateway, empty)[1].status
    assert set(statuses.values()) == {403}, statuses
    assert gateway.origin.count(path.decode()) == 0


def test_i12_path_cannot_repoint_the_origin_url(gateway: Gateway) -> None:
    for path in (b"@evil.example/", b"evil.example/", b"http://evil.example/", b"/a#frag"):
        status = inner_status(gateway, known_request(gateway, path))
        assert 400 <= status < 600, (path, status)
    assert not any("evil" in seen.path_qs for seen in gateway.origin.snapshot())


# --- I13 / A6: Date and replay ---------------------------------------------------------------


def assert_date_problem(response: bhttp.Response) -> None:
    # RFC 9458 §6.5.2: 400, the #date problem type, the gateway's Date, not cacheable.
    headers = dict(response.headers)
    assert response.status == 400
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(response.content)["type"] == PROBLEM_DATE
    assert b"date" in headers
    assert (
        b"no-store" in headers.get(b"cache-control", b"")
        or b"date" in headers.get(b"vary", b"").lower()
    )


@pytest.mark.parametrize("offset", [-86400, -600, 600, 86400])
def test_i13_date_outside_the_window_gets_inner_date_problem(gateway: Gateway, offset: int) -> None:
    path = unique_path()
    date = formatdate(time.time() + offset, usegmt=True).encode()
    response = exchange(gateway, gateway.inner(path, headers=((b"date", date),)))[1]
    assert_date_problem(response)
    assert gateway.origin.count(path.decode()) == 0


def test_a6_g11_dated_replay_is_rejected_and_has_no_second_effect(gateway: Gateway) -> None:
    path = unique_path()
    date = formatdate(usegmt=True).encode()
    inner = bhttp.encode_request(
        gateway.inner(path, method=b"POST", headers=((b"date", date),), content=b"charge once")
    )
    # The same ephemeral key twice: a byte-identical request and an opener for each answer.
    ephemeral = os.urandom(32)
    body, opener = encapsulate_request(gateway.key.config, inner, ephemeral_private_key=ephemeral)
    twin, twin_opener = encapsulate_request(
        gateway.key.config, inner, ephemeral_private_key=ephemeral
    )
    assert body == twin
    first = post_ohttp(gateway.port, GATEWAY_PATH, body)
    replayed = post_ohttp(gateway.port, GATEWAY_PATH, twin)
    assert first.status == replayed.status == 200
    assert bhttp.decode_response(opener.open(first.body)).status == 200
    assert_date_problem(bhttp.decode_response(twin_opener.open(replayed.body)))
    assert gateway.origin.count(path.decode()) == 1  # the replay reached nothing


# --- I14-I15: the target's answers ----------------------------------------------------------


def test_i14_hanging_target_gets_inner_504(gateway: Gateway) -> None:
    assert exchange(gateway, gateway.inner(b"/hang"))[1].status == 504


def test_a3_22_i15_outer_headers_do_not_depend_on_the_inner_response(gateway: Gateway) -> None:
    origin_statuses = [200, 201, 204, 301, 302, 400, 404, 418, 429, 500, 502, 503]
    requests = [gateway.inner(f"/status/{status}".encode()) for status in origin_statuses]
    requests += [
        gateway.inner(b"/hang"),  # inner 504
        gateway.inner(b"/", authority=b"evil.example"),  # inner 403
        gateway.inner(b"/", headers=((b"date", b"Mon, 01 Jan 2001 00:00:00 GMT"),)),  # #date
        gateway.inner(b"/", headers=((b"expect", b"100-continue"),)),  # inner 417
    ]
    inner_statuses = []
    outer_shapes = set()
    for request in requests:
        outer, inner = exchange(gateway, request)
        inner_statuses.append(inner.status)
        # Content-Length is framing and Date is the clock: neither depends on the inner answer
        # beyond the size; every other field must be byte-identical.
        shape = tuple(
            sorted(
                (name.lower(), value if name.lower() not in ("content-length", "date") else "")
                for name, value in outer.headers
            )
        )
        outer_shapes.add(shape)
        for name, value in LEAKY_HEADERS.items():
            assert outer.header(name) != value
    assert inner_statuses[: len(origin_statuses)] == origin_statuses
    assert inner_statuses[len(origin_statuses) :] == [504, 403, 400, 417]
    assert len(outer_shapes) == 1, outer_shapes
