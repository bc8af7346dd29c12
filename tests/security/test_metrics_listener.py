"""Issue 13, finding 10: the metrics listener has the main listener's head deadline.

A connection to a real gateway's metrics port that never completes its head is closed once
``--header-timeout`` passed, and a normal scrape still works.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from ohttp.aio.keyfile import save_key_file
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, free_consecutive_ports, ohttp_process

HEADER_TIMEOUT = 1.0


def test_metrics_listener_closes_a_stalled_head(tmp_path: Path) -> None:
    save_key_file(tmp_path / "keys.json", [GatewayKey.generate(1)], force=True)
    port = free_consecutive_ports(2)
    args = [
        "gateway", "--keys", str(tmp_path / "keys.json"), "--listen", f"{LOOPBACK}:{port}",
        "--backend", "echo", "--metrics-listen", f"{LOOPBACK}:{port + 1}",
        "--header-timeout", str(HEADER_TIMEOUT),
    ]  # fmt: skip
    with ohttp_process(args, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "gw.log"):
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port + 1}/metrics", timeout=5) as reply:
            assert reply.status == 200
        with socket.create_connection((LOOPBACK, port + 1), timeout=HEADER_TIMEOUT + 3) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < HEADER_TIMEOUT + 2
