"""The relay in-process in front of a recording gateway: what passes and what does not."""

from __future__ import annotations

import asyncio
import os
import random
import string
from collections.abc import AsyncIterator

import aiohttp
import pytest

from relay.config import GatewayTarget
from relay.serve import serve

from .conftest import GATEWAY_PATH, RecordingGateway, key_list, relay_config, unused_port

SECRET = "zq-distinctive-7f3a9c"
REQ = "message/ohttp-req"

# Checklist R7/R8 plus Part A4.28: none of these may reach the gateway.
CLIENT_HEADERS = {
    "Cookie": f"session={SECRET}", "Authorization": f"Bearer {SECRET}",
    "User-Agent": f"agent-{SECRET}", "Referer": f"https://{SECRET}.example/",
    "Origin": f"https://{SECRET}.example", "Accept-Language": f"x-{SECRET}",
    "X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7", "Via": f"1.1 {SECRET}",
    "X-Real-IP": "203.0.113.7", "True-Client-IP": "203.0.113.7",
    "CF-Connecting-IP": "203.0.113.7", "Proxy-Authorization": f"Basic {SECRET}",
    "Connection": "X-Secret", "X-Secret": SECRET, "Accept-Encoding": "gzip, br",
    "Content-Encoding": "identity", "Cache-Control": f"no-cache, {SECRET}",
}
ALLOWED_UPSTREAM = {b"host", b"content-type", b"content-length", b"transfer-encoding",
                    b"incremental", b"authorization"}


def random_x_headers(count: int = 50) -> dict[str, str]:
    rng = random.Random(4)
    names = {"X-" + "".join(rng.choices(string.ascii_letters, k=12)) for _ in range(count)}
    return {name: f"{SECRET}-{i}" for i, name in enumerate(sorted(names))}


async def post(url: str, body: bytes, headers: dict[str, str] | None = None,
               content_type: str | None = REQ) -> tuple[int, dict[str, str], bytes]:
    all_headers = {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.post(
        url, data=body, headers=all_headers, skip_auto_headers={"Content-Type"}
    ) as response:
        return response.status, dict(response.headers), await response.read()


async def test_only_minimal_headers_reach_gateway(gateway: RecordingGateway,
                                                  relay_url: str) -> None:
    headers = {**CLIENT_HEADERS, **random_x_headers(), "Incremental": "?1"}
    status, _, body = await post(relay_url + "/", b"ciphertext", headers)
    assert (status, body) == (200, b"ciphertext")
    [seen] = gateway.posts
    names = {name.lower() for name, _ in seen.raw_headers}
    assert names <= ALLOWED_UPSTREAM
    assert b"authorization" not in names  # no token configured
    assert (b"incremental", b"?1") in seen.raw_headers
    flat = repr(seen.raw_headers) + seen.path_qs
    assert SECRET not in flat and "203.0.113.7" not in flat
    assert seen.body == b"ciphertext"  # Content-Encoding was not passed on
    host = dict(seen.raw_headers)[b"host"]
    assert host == gateway.url.split("/")[2].encode()
    assert seen.path_qs == GATEWAY_PATH


async def test_invalid_incremental_value_is_dropped(gateway: RecordingGateway,
                                                    relay_url: str) -> None:
    status, _, _ = await post(relay_url + "/", b"x", {"Incremental": SECRET})
    assert status == 200
    assert all(name.lower() != b"incremental" for name, _ in gateway.posts[0].raw_headers)


async def test_random_megabyte_identical_both_ways(gateway: RecordingGateway,
                                                   relay_url: str) -> None:
    payload = os.urandom(1024 * 1024)
    status, headers, body = await post(relay_url + "/", payload)
    assert status == 200 and body == payload
    assert gateway.posts[0].body == payload
    assert headers["Content-Length"] == str(len(payload))


async def test_client_chunked_body_is_streamed_chunked(gateway: RecordingGateway,
                                                       relay_url: str) -> None:
    pieces = [os.urandom(70_000) for _ in range(5)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with aiohttp.ClientSession() as session, session.post(
        relay_url + "/", data=body(), headers={"Content-Type": "message/ohttp-chunked-req"}
    ) as response:
        assert response.status == 200
        assert await response.read() == b"".join(pieces)
    seen = dict((k.lower(), v) for k, v in gateway.posts[0].raw_headers)
    assert seen[b"transfer-encoding"] == b"chunked"
    assert b"content-length" not in seen


async def test_downstream_headers_filtered(gateway: RecordingGateway, relay_url: str) -> None:
    gateway.extra_headers = {"Set-Cookie": f"id={SECRET}", "X-Debug": SECRET,
                             "Cache-Control": "no-store", "Retry-After": "5",
                             "Incremental": "?0", "Server": f"gw/{SECRET}"}
    status, headers, body = await post(relay_url + "/", b"abc")
    assert (status, body) == (200, b"abc")
    names = {name.lower() for name in headers}
    assert names <= {"content-type", "content-length", "cache-control", "retry-after",
                     "incremental", "date", "connection"}
    assert headers["Cache-Control"] == "no-store" and headers["Retry-After"] == "5"
    assert SECRET not in repr(headers)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 405), ("PUT", "/", 405), ("DELETE", "/", 405),
    ("POST", "/other", 404), ("POST", "/127.0.0.1", 404), ("POST", "/localhost", 404),
])
async def test_wrong_method_or_path_forwards_nothing(gateway: RecordingGateway, relay_url: str,
                                                     method: str, path: str, status: int) -> None:
    async with aiohttp.ClientSession() as session, session.request(
        method, relay_url + path, data=b"x", headers={"Content-Type": REQ}
    ) as response:
        assert response.status == status
        assert "Server" not in response.headers
    assert gateway.posts == []


@pytest.mark.parametrize("content_type", [
    None, "application/octet-stream", "message/ohttp-req-x", "message/ohttp-res",
    "message/ohttp-req; charset=utf-8", "text/message/ohttp-req",
])
async def test_media_type_exact_match(gateway: RecordingGateway, relay_url: str,
                                      content_type: str | None) -> None:
    status, _, _ = await post(relay_url + "/", b"x", content_type=content_type)
    assert status == 415
    assert gateway.posts == []


async def test_empty_body_400(gateway: RecordingGateway, relay_url: str) -> None:
    status, _, _ = await post(relay_url + "/", b"")
    assert status == 400
    assert gateway.posts == []


async def test_content_length_over_limit_413_before_reading(gateway: RecordingGateway,
                                                            relay_url: str) -> None:
    host, port = relay_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    # Announce 3 MiB but send nothing: the answer must come from the header alone.
    writer.write(b"POST / HTTP/1.1\r\nHost: r\r\nContent-Type: message/ohttp-req\r\n"
                 b"Content-Length: 3145728\r\n\r\n")
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413")
    assert gateway.posts == []


async def test_chunked_body_over_limit_413_and_upstream_aborted(gateway: RecordingGateway,
                                                                relay_url: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"\0" * 100_000  # 4 MB > 2 MiB limit

    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(relay_url + "/", data=body(),
                                    headers={"Content-Type": REQ}) as response:
                status = response.status
        except aiohttp.ClientError:
            status = 413  # the relay may close before the client finished sending
    assert status == 413
    await asyncio.sleep(0.2)
    # The gateway never received a complete request: it was aborted mid-body.
    assert gateway.posts == []


async def test_gateway_drop_is_502_without_retry(gateway: RecordingGateway,
                                                 relay_url: str) -> None:
    gateway.mode = "drop"
    status, _, body = await post(relay_url + "/", os.urandom(200_000))
    assert status == 502 and body == b"bad gateway\n"
    assert len(gateway.posts) == 1


async def test_gateway_unreachable_is_502() -> None:
    url = f"http://127.0.0.1:{unused_port()}{GATEWAY_PATH}"
    async with serve(relay_config(url)) as listening:
        status, _, body = await post(f"http://127.0.0.1:{listening.port}/", b"x")
    assert (status, body) == (502, b"bad gateway\n")


async def test_gateway_timeout_is_504(gateway: RecordingGateway) -> None:
    gateway.mode = "hang"
    async with serve(relay_config(gateway.url, upstream_timeout=0.5)) as listening:
        status, _, body = await post(f"http://127.0.0.1:{listening.port}/", b"x")
    assert (status, body) == (504, b"gateway timeout\n")
    assert len(gateway.posts) == 1


@pytest.mark.parametrize(("gw_status", "content_type", "expected"), [
    (422, "application/problem+json", 422), (413, "text/plain", 413), (400, "text/plain", 400),
    (500, "text/html", 502), (302, "text/html", 502), (200, "text/html", 502),
    (503, "text/plain", 503),
])
async def test_gateway_status_mapping(gateway: RecordingGateway, relay_url: str,
                                      gw_status: int, content_type: str, expected: int) -> None:
    gateway.mode, gateway.status, gateway.content_type = "fixed", gw_status, content_type
    gateway.extra_headers = {"Location": "http://127.0.0.1:1/elsewhere", "Retry-After": "7"}
    status, headers, body = await post(relay_url + "/", b"x")
    assert status == expected
    assert "Location" not in headers
    if 400 <= gw_status < 500:
        assert body == b"gw-body" and headers["Content-Type"] == content_type
    else:
        assert b"gw-body" not in body
    if expected == 503:
        assert headers["Retry-After"] == "7"
    assert len(gateway.posts) == 1


async def test_repeated_gateway_answers_map_the_same_every_time(gateway: RecordingGateway,
                                                                relay_url: str) -> None:
    """A gateway's heads repeat byte for byte, and the relay keeps the last one it parsed and
    passed: a repeat of a passed answer passes again, a repeat of a refused one is refused."""
    gateway.mode = "fixed"
    answers = [(200, "message/ohttp-res", 200), (200, "message/ohttp-res", 200),
               (500, "text/html", 502), (500, "text/html", 502), (200, "text/html", 502),
               (200, "text/html", 502), (422, "text/plain", 422), (422, "text/plain", 422),
               (200, "message/ohttp-res", 200)]
    for gw_status, content_type, expected in answers:
        gateway.status, gateway.content_type = gw_status, content_type
        status, headers, body = await post(relay_url + "/", b"x")
        assert status == expected
        if expected == gw_status:
            assert body == b"gw-body" and headers["Content-Type"] == content_type
        else:
            assert b"gw-body" not in body
    assert len(gateway.posts) == len(answers)


async def test_first_chunk_arrives_before_gateway_finishes(gateway: RecordingGateway,
                                                           relay_url: str) -> None:
    gateway.mode = "slow"
    async with aiohttp.ClientSession() as session, session.post(
        relay_url + "/", data=b"x", headers={"Content-Type": "message/ohttp-chunked-req",
                                              "Incremental": "?1"}
    ) as response:
        assert response.headers["Incremental"] == "?1"
        first = await asyncio.wait_for(response.content.readexactly(11), 10)
        assert first == b"first-chunk"
        assert not gateway.release.is_set()  # the gateway is still holding its second chunk
        gateway.release.set()
        assert await response.content.read() == b"second-chunk"


async def test_key_mirror_identical_and_cached(gateway: RecordingGateway, relay_url: str) -> None:
    bodies = []
    async with aiohttp.ClientSession() as session:
        for headers in ({"User-Agent": "a", "Cookie": SECRET}, {"Accept-Language": "fr"}):
            async with session.get(relay_url + "/ohttp-keys", headers=headers) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/ohttp-keys"
                max_age = int(response.headers["Cache-Control"].removeprefix("max-age="))
                assert 0 < max_age <= 600
                assert "Set-Cookie" not in response.headers
                bodies.append(await response.read())
    assert bodies == [key_list(), key_list()]
    gets = [r for r in gateway.seen if r.method == "GET"]
    assert len(gets) == 1
    assert SECRET not in repr(gets[0].raw_headers)
    assert gets[0].path_qs == GATEWAY_PATH


async def test_key_mirror_unavailable_is_502() -> None:
    url = f"http://127.0.0.1:{unused_port()}{GATEWAY_PATH}"
    async with serve(relay_config(url)) as listening, aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{listening.port}/ohttp-keys") as response:
        assert response.status == 502


async def test_key_mirror_rejects_invalid_list(gateway: RecordingGateway, relay_url: str) -> None:
    gateway.keys = b"\x00\x05garbage"
    async with aiohttp.ClientSession() as session, \
            session.get(relay_url + "/ohttp-keys") as response:
        assert response.status == 502


async def test_named_gateways_and_token(gateway: RecordingGateway) -> None:
    config = relay_config(gateway.url, gateways=(GatewayTarget("alpha", gateway.url),),
                          gateway_token="relay-token-1")
    async with serve(config) as listening:
        base = f"http://127.0.0.1:{listening.port}"
        assert (await post(base + "/alpha", b"x"))[0] == 200
        assert (await post(base + "/", b"x"))[0] == 404
        assert (await post(base + "/beta", b"x"))[0] == 404
        async with aiohttp.ClientSession() as session, \
                session.get(base + "/alpha/ohttp-keys") as response:
            assert response.status == 200
    assert len(gateway.posts) == 1
    assert (b"authorization", b"Bearer relay-token-1") in gateway.posts[0].raw_headers


async def test_in_flight_cap_503(gateway: RecordingGateway) -> None:
    gateway.mode = "slow"
    async with serve(relay_config(gateway.url, max_in_flight=1)) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        async with aiohttp.ClientSession() as session, session.post(
            url, data=b"x", headers={"Content-Type": REQ}
        ) as held:
            assert await held.content.readexactly(11) == b"first-chunk"
            status, headers, _ = await post(url, b"y")
            assert status == 503 and headers["Retry-After"] == "1"
            gateway.release.set()


async def test_rate_limit_same_rule_for_everyone(gateway: RecordingGateway) -> None:
    async with serve(relay_config(gateway.url, rate_limit=2)) as listening:
        url = f"http://127.0.0.1:{listening.port}/"
        statuses = [(await post(url, b"x"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
    assert len(gateway.posts) == 2


async def test_metrics_listener(gateway: RecordingGateway) -> None:
    config = relay_config(gateway.url, metrics_host="127.0.0.1", metrics_port=0)
    async with serve(config) as listening:
        await post(f"http://127.0.0.1:{listening.port}/", b"hello")
        await post(f"http://127.0.0.1:{listening.port}/", b"", content_type="text/plain")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{listening.metrics_port}/metrics") as r:
                text = await r.text()
            async with session.get(f"http://127.0.0.1:{listening.port}/metrics") as r:
                assert r.status == 404  # metrics only on the metrics listener
    assert 'ohttp_relay_requests_total{result="forwarded"} 1.0' in text
    assert 'ohttp_relay_requests_total{result="unsupported_media_type"} 1.0' in text
    assert 'ohttp_relay_body_bytes_total{direction="upstream"} 5.0' in text
    assert "ohttp_relay_upstream_latency_seconds_count 1.0" in text
    assert "ohttp_relay_in_flight 0.0" in text
