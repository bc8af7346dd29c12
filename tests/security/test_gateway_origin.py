"""What the real `ohttp gateway` sends to its HTTP origin (checklist A8.56, A5.38, A3.25).

Inner requests are attacker-controlled Binary HTTP; the gateway turns them into HTTP/1.1
towards the origin. Framing and connection fields inside them must not reach the origin,
where they could smuggle a second request or change the gateway's own connection
(RFC 9292 §3.6; RFC 9110 §7.6.1).
"""

from __future__ import annotations

import uuid

from .conftest import Gateway, Seen, exchange

SMUGGLED = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def unique_path() -> bytes:
    return b"/origin/" + uuid.uuid4().hex.encode()


def seen_at(gateway: Gateway, path: bytes) -> list[Seen]:
    return [s for s in gateway.origin.snapshot() if s.path_qs == path.decode()]


def test_a8_56_framing_fields_cannot_smuggle_a_request_to_the_origin(gateway: Gateway) -> None:
    for framing in ((b"transfer-encoding", b"chunked"), (b"content-length", b"0"),
                    (b"content-length", b"5")):  # fmt: skip
        path = unique_path()
        request = gateway.inner(path, method=b"POST", headers=(framing,), content=SMUGGLED)
        assert exchange(gateway, request)[1].status == 200
        (seen,) = seen_at(gateway, path)
        assert seen.body == SMUGGLED  # delivered as content, with the gateway's own framing
    assert not any("smuggled" in s.path_qs for s in gateway.origin.snapshot())


def test_a8_56_connection_specific_fields_are_removed(gateway: Gateway) -> None:
    path = unique_path()
    headers = (
        (b"connection", b"close, x-hop"),
        (b"x-hop", b"secret"),
        (b"keep-alive", b"timeout=1"),
        (b"proxy-connection", b"keep-alive"),
        (b"te", b"trailers"),
        (b"x-kept", b"end-to-end"),
    )
    assert exchange(gateway, gateway.inner(path, headers=headers))[1].status == 200
    (seen,) = seen_at(gateway, path)
    names = {name.lower() for name, _ in seen.headers}
    assert b"x-kept" in names
    for removed in (b"x-hop", b"keep-alive", b"proxy-connection", b"te"):
        assert removed not in names, removed
    assert dict((n.lower(), v) for n, v in seen.headers).get(b"connection") != b"close, x-hop"


def test_a8_56_proxy_authorization_is_not_forwarded_to_the_origin(gateway: Gateway) -> None:
    path = unique_path()
    headers = ((b"proxy-authorization", b"Basic eDp5"), (b"x-kept", b"end-to-end"))
    assert exchange(gateway, gateway.inner(path, headers=headers))[1].status == 200
    (seen,) = seen_at(gateway, path)
    names = {name.lower() for name, _ in seen.headers}
    assert b"x-kept" in names
    assert b"proxy-authorization" not in names


def test_a5_38_inner_host_field_cannot_repoint_the_origin(gateway: Gateway) -> None:
    path = unique_path()
    request = gateway.inner(path, headers=((b"host", b"169.254.169.254"),))
    status = exchange(gateway, request)[1].status
    # Either refused (the Host names a target not allowlisted) or sent with the origin's Host.
    assert status in (200, 403)
    for seen in seen_at(gateway, path):
        hosts = [value for name, value in seen.headers if name.lower() == b"host"]
        assert hosts == [gateway.origin.authority.encode()]


def test_inner_method_case_is_preserved_or_refused(gateway: Gateway) -> None:
    path = unique_path()
    status = exchange(gateway, gateway.inner(path, method=b"get"))[1].status
    methods = [seen.method for seen in seen_at(gateway, path)]
    assert (status, methods) == (200, ["get"]) or (400 <= status < 600 and methods == [])
