"""A second server on a port already in use refuses to start, naming the address (issue 12,
item 2), also with ``--workers 2`` whose SO_REUSEPORT would otherwise share it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import LOOPBACK, REPO, free_port, ohttp_process


def run_to_exit(args: list[str], timeout: float = 30) -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run([sys.executable, "-m", "ohttp", *args], cwd=REPO, capture_output=True,
                          timeout=timeout, check=False)
    lines = [json.loads(line) for line in done.stderr.decode().splitlines() if line.startswith("{")]
    return done.returncode, lines


def reuse_port_listener(port: int) -> socket.socket:
    """What any local process of the same user could open: a listener with SO_REUSEPORT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((LOOPBACK, port))
    sock.listen()
    return sock


@pytest.mark.parametrize("server", ["gateway", "relay"])
def test_workers_refuse_a_port_another_process_shares(server: str, tmp_path: Path) -> None:
    port = free_port()
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=9)
    if server == "gateway":
        args = gateway_args(key_file, port, "--workers", "2")
    else:
        args = [*relay_args(port, base_url(free_port()) + WELL_KNOWN), "--workers", "2"]
    with reuse_port_listener(port):
        code, lines = run_to_exit(args)
    assert code == 1
    failed = [line for line in lines if line["event"] == "listen_failed"]
    assert failed == [{**failed[0], "host": LOOPBACK, "port": port, "error": "EADDRINUSE"}]


def test_a_second_gateway_never_serves_the_first_ones_port(tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write_key_file(first, key_id=2)
    write_key_file(second, key_id=9)
    port = free_port()
    with ohttp_process(gateway_args(first, port, "--workers", "2"),
                       base_url(port) + "/healthz", tmp_path / "first.log"):
        code, lines = run_to_exit(gateway_args(second, port, "--workers", "2"))
        assert code == 1
        assert any(line["event"] == "listen_failed" and line["port"] == port for line in lines)
