"""Nothing about a request is left in the logs: a distinctive secret goes in every place a
client controls, through success and every error path, and appears in no log output."""

from __future__ import annotations

import json
import logging
from email.utils import formatdate
from pathlib import Path

import pytest

from gateway.backends import EchoBackend
from gateway.errors import Result
from ohttp import bhttp
from tests.gateway.conftest import (
    MakeGateway,
    gateway_process,
    http,
    inner_request,
    ohttp_exchange,
    seal,
    write_keys,
)
from tests.support import LOOPBACK, free_port

SECRET = "zq7-SECRET-5c1e"
S = SECRET.encode()


def secret_requests() -> list[bhttp.Request]:
    """Inner requests carrying the secret, covering ok, 403, 417, date, 400 paths."""
    headers = ((b"x-secret", S), (b"cookie", b"id=" + S), (b"user-agent", S))
    stale = formatdate(0, usegmt=True).encode()
    return [
        inner_request(b"/" + S, method=b"POST", headers=headers, content=S * 10, date=True),
        inner_request(b"/" + S, authority=S.lower() + b".example"),
        inner_request(b"/" + S, authority=b"169.254.169.254"),
        inner_request(b"/", method=b"POST", headers=((b"expect", S),), content=S),
        inner_request(b"/" + S, headers=((b"date", stale), (b"x", S))),
        inner_request(b"/" + S, headers=((b"date", S),)),
    ]


def outer_attempts(body: bytes) -> list[tuple[bytes, dict[str, str]]]:
    """Outer requests with the secret in headers and bodies, for every plain error."""
    client_headers = {"User-Agent": SECRET, "X-Forwarded-For": SECRET, "Cookie": SECRET}
    return [
        (S * 4, {"Content-Type": "message/ohttp-req", **client_headers}),  # 400 or 422
        (body[:7] + S * 8, {"Content-Type": "message/ohttp-req"}),  # 422
        (body, {"Content-Type": "text/" + SECRET}),  # 415
        (S * 5000, {"Content-Type": "message/ohttp-req"}),  # 413
    ]


def test_no_secret_in_process_logs(tmp_path: Path) -> None:
    key = write_keys(tmp_path / "keys.json")
    port = free_port()
    url = f"http://{LOOPBACK}:{port}/.well-known/ohttp-gateway"
    args = ["--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{port}"]
    args += ["--backend", "echo", "--max-body", "20000"]
    with gateway_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "log") as gw:
        statuses = []
        for request in secret_requests():
            statuses.append(ohttp_exchange(url, key.config, request).status)
        assert statuses == [200, 403, 403, 417, 400, 400]
        body, _ = seal(key.config, inner_request())
        for payload, headers in outer_attempts(body):
            assert http(url, payload, headers)[0] in {400, 413, 415, 422}
        http(url + "/" + SECRET)  # 404 with the secret in the path
        valid, _ = seal(key.config, secret_requests()[0])
        http(url, valid, {"Content-Type": "message/ohttp-req"})
        http(url, valid, {"Content-Type": "message/ohttp-req"})  # replay
    log = gw.log()
    assert "listening" in log  # the capture works: the process did log
    assert SECRET not in log and SECRET.lower() not in log
    for line in log.splitlines():
        json.loads(line)  # structured: every line is one JSON object


async def test_no_secret_in_records(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    class Leaky(EchoBackend):
        async def handle(self, request: bhttp.Request) -> bhttp.Response:
            if request.path.endswith(b"boom"):
                raise RuntimeError(SECRET)
            return await super().handle(request)

    caplog.set_level(logging.DEBUG)
    gateway = await make_gateway(backend=Leaky(), max_body=20000)
    for request in secret_requests():
        await gateway.exchange(request)
    _, inner = await gateway.exchange(inner_request(b"/" + S + b"boom"))
    assert inner.status == 502 and S not in inner.content
    body, _ = seal(gateway.key.config, inner_request())
    for payload, headers in outer_attempts(body):
        await gateway.client.post("/.well-known/ohttp-gateway", data=payload, headers=headers)
    assert gateway.result_count(Result.BACKEND_ERROR) == 1
    assert any(record.getMessage() == "backend_exception" for record in caplog.records)
    for record in caplog.records:
        rendered = " ".join(
            [record.getMessage(), repr(record.args), repr(record.__dict__), str(record.exc_info)]
        )
        assert SECRET not in rendered and SECRET.lower() not in rendered
