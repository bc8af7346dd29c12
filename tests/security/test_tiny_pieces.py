"""Issue 13, finding 4: inputs made of the smallest pieces, against a real gateway process.

While hostile requests of one-byte Binary HTTP content chunks and one-byte chunked OHTTP
chunks (each as large as ``--max-body`` allows) run, a probe sends ``/healthz`` to the same
worker; its 95th-percentile latency stays under 50 ms. The costs before and after are
measured by ``python -m benchmarks.worst_cases``.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.worst_cases import MAX_BODY, _tiny_bhttp, _tiny_chunked
from ohttp import bhttp
from ohttp.aio.keyfile import save_key_file
from ohttp.chunked import ChunkedRequestEncoder
from ohttp.encapsulation import encapsulate_request
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, free_port, ohttp_process

from .conftest import GATEWAY_PATH, HTTP_TIMEOUT

ATTACKS = 4  # of each kind, back to back
PROBE_INTERVAL = 0.01


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[tuple[int, GatewayKey]]:
    key = GatewayKey.generate(1)
    save_key_file(tmp_path / "keys.json", [key], force=True)
    port = free_port()
    args = [
        "gateway", "--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{port}",
        "--backend", "echo", "--max-body", str(MAX_BODY),
    ]  # fmt: skip
    with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "gw.log"):
        yield port, key


def _post(port: int, media_type: str, body: bytes) -> int:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", GATEWAY_PATH, body=body, headers={"Content-Type": media_type})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _attack(port: int, bodies: list[tuple[str, bytes]], statuses: list[int]) -> None:
    for _ in range(ATTACKS):
        for media_type, body in bodies:
            statuses.append(_post(port, media_type, body))


def _probe(port: int, stop: threading.Event, latencies: list[float]) -> None:
    """``/healthz`` on a fixed schedule, each latency counted from when it was due (so a
    blocked loop weighs in with every probe it delays, not just one)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=HTTP_TIMEOUT)
    due = time.perf_counter()
    try:
        while not stop.is_set():
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            done = time.perf_counter()
            while due <= done:
                latencies.append(done - due)
                due += PROBE_INTERVAL
            stop.wait(due - done)
    finally:
        conn.close()


def test_tiny_pieces_do_not_block_the_worker(gateway_process: tuple[int, GatewayKey]) -> None:
    port, key = gateway_process
    # A legitimate chunked request still works under the new limits.
    encoder = ChunkedRequestEncoder(key.config)
    inner = bhttp.encode_request(bhttp.Request(b"GET", b"https", b"echo.internal", b"/", (), b""))
    assert _post(port, "message/ohttp-chunked-req", encoder.header() + encoder.final(inner)) == 200
    one_shot, _ = encapsulate_request(key.config, _tiny_bhttp())
    bodies = [("message/ohttp-req", one_shot), ("message/ohttp-chunked-req", _tiny_chunked(key))]
    statuses: list[int] = []
    latencies: list[float] = []
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(port, stop, latencies))
    probe.start()
    try:
        _attack(port, bodies, statuses)
    finally:
        stop.set()
        probe.join(HTTP_TIMEOUT)
    # Answered (an inner 413 inside an outer 200, or a chunked answer), never a 5xx.
    assert statuses and all(status < 500 for status in statuses), statuses
    assert len(latencies) >= 20
    p95 = statistics.quantiles(latencies, n=20)[-1]
    assert p95 < 0.050, f"p95 {p95 * 1000:.1f} ms over {len(latencies)} probes"
