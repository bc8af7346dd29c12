"""The serving shell shared by the gateway and the relay (ohttp.aio), on real servers."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ohttp.aio.guard import ConnectionTracker
from ohttp.aio.logs import REQUEST_ERROR_EVENT, JsonLinesFormatter
from ohttp.aio.serving import TRACKER, Listening, omit_server_header, serving, tracked
from tests.support import LOOPBACK, REPO

PEER = "203.0.113.77"  # documentation address: stands for a client in log records
SECRET = "sv-canary-91c2"


def _record(name: str, msg: str, args: tuple[object, ...], **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_formatter_keeps_the_template_and_whitelisted_fields_only() -> None:
    record = _record("gateway", "listening %s", (SECRET,), port=8080, header=SECRET)
    document = json.loads(JsonLinesFormatter().format(record))
    assert document["event"] == "listening %s"
    assert document["port"] == 8080
    assert SECRET not in json.dumps(document)  # neither the argument nor an unlisted field


def test_formatter_withholds_aiohttp_request_errors() -> None:
    try:
        raise ValueError(SECRET)
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("aiohttp.server", "Error handling request from %s", (PEER,))
    record.exc_info = exc_info
    line = JsonLinesFormatter().format(record)
    assert json.loads(line)["event"] == REQUEST_ERROR_EVENT
    assert json.loads(line)["error"] == "ValueError"
    assert PEER not in line and SECRET not in line and "Traceback" not in line


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["s"]))
    return web.Response(text="done")


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Listening]:
    max_connections, header_timeout = getattr(request, "param", (8, 0.3))
    tracker = ConnectionTracker(max_connections, header_timeout)
    app = web.Application()
    app[TRACKER] = tracker
    app.router.add_get("/slow", tracked(_slow))
    omit_server_header(app)
    async with serving(app, (LOOPBACK, 0), tracker) as listening:
        yield listening


async def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes (bounded by a 5 s wait per read)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(raw)
    answer = b""
    try:
        while piece := await asyncio.wait_for(reader.read(4096), 5):
            answer += piece
    finally:
        writer.close()
    return answer


async def test_partial_head_is_cut_off(server: Listening) -> None:
    assert await _exchange(server.port, b"GET /slow?s=0 HTTP/1.1\r\nHo") == b""


async def test_request_longer_than_the_head_deadline_is_served(server: Listening) -> None:
    # The handler runs 3x the head deadline: the guard must not cut it off.
    raw = b"GET /slow?s=0.9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await _exchange(server.port, raw)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"done")
    assert b"\r\nserver:" not in answer.lower()  # no aiohttp/Python version disclosure


@pytest.mark.parametrize("server", [(1, 5.0)], indirect=True)
async def test_connections_over_the_cap_get_a_fixed_503(server: Listening) -> None:
    _, first = await asyncio.open_connection(LOOPBACK, server.port)
    try:
        answer = await _exchange(server.port, b"GET /slow?s=0 HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        first.close()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n")


_SUPERVISED = """
import sys
from ohttp.aio.logs import configure_logging
from ohttp.aio.serving import run_worker, wait_for_stop
from ohttp.aio.supervisor import run_workers

def worker(index):
    if index == 0:
        return 0  # ends on its own at once
    return run_worker(wait_for_stop)  # returns only on SIGTERM/SIGINT

configure_logging()
sys.exit(run_workers(2, worker, forward_sighup=False))
"""


def test_a_worker_ending_on_its_own_stops_the_rest() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SUPERVISED],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=30,
    )
    assert result.returncode == 1, result.stderr  # reported as a failure ...
    assert "workers_started" in result.stderr  # ... after both were started


async def test_no_listener_names_its_software() -> None:
    """Neither the main nor the metrics listener sends aiohttp's Server header."""
    app, metrics = web.Application(), web.Application()
    app.router.add_get("/", _ok)
    metrics.router.add_get("/metrics", _ok)
    tracker = ConnectionTracker(8, 5.0)
    async with serving(app, (LOOPBACK, 0), tracker, metrics=(metrics, (LOOPBACK, 0))) as ports:
        assert ports.metrics_port is not None
        for port, path in ((ports.port, "/"), (ports.metrics_port, "/metrics")):
            raw = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            answer = await _exchange(port, raw)
            assert answer.startswith(b"HTTP/1.1 200") and b"\r\nserver:" not in answer.lower()


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.mark.parametrize(("handler_seconds", "finished"), [(0.3, True), (30.0, False)])
async def test_shutdown_lets_requests_in_flight_finish_up_to_the_deadline(
    handler_seconds: float, finished: bool
) -> None:
    app = web.Application()
    app.router.add_get("/slow", _slow)
    tracker = ConnectionTracker(8, 5.0)
    async with serving(app, (LOOPBACK, 0), tracker, shutdown_timeout=2.0) as listening:
        raw = f"GET /slow?s={handler_seconds} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        request = asyncio.ensure_future(_exchange(listening.port, raw.encode()))
        await asyncio.sleep(0.1)  # the request is being handled when the shutdown starts
        started = asyncio.get_running_loop().time()
    stopped_after = asyncio.get_running_loop().time() - started
    answer = await request
    assert answer.endswith(b"done") is finished
    assert stopped_after < 10  # the 30 s handler was cut off at the 2 s deadline


_TWO_WORKERS_LOG = """
import logging, sys, time
from ohttp.aio.logs import configure_logging
from ohttp.aio.serving import run_worker, wait_for_stop
from ohttp.aio.supervisor import run_workers

def worker(index):
    logging.getLogger("ohttp.test").info("worker_up")
    if index == 0:
        time.sleep(1.0)  # ends on its own well after worker 1 has logged
        return 0
    return run_worker(wait_for_stop)

configure_logging()
sys.exit(run_workers(2, worker, forward_sighup=False))
"""


def test_every_worker_line_names_its_worker_and_an_iso8601_time() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _TWO_WORKERS_LOG],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=30,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert sorted(line["worker"] for line in lines if line["event"] == "worker_up") == [0, 1]
    parent = [line for line in lines if line["event"] == "workers_started"]
    assert len(parent) == 1 and "worker" not in parent[0]  # the supervisor is no worker
    for line in lines:
        moment = datetime.datetime.fromisoformat(str(line["time"]))
        assert str(line["time"]).endswith("Z") and moment.tzinfo == datetime.UTC
