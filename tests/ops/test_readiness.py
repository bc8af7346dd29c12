"""/healthz and /readyz on real `ohttp gateway` and `ohttp relay` processes (issue 12, item 7)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ohttp.aio.readiness import Readiness
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import LOOPBACK, free_port, ohttp_process, stop_process, wait_http_ok


def fetch(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_status(url: str, status: int, timeout: float = 10.0) -> bytes:
    """Poll ``url`` until it answers ``status`` (bounded); its body then."""
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] = (0, b"")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            last = fetch(url)
            if last[0] == status:
                return last[1]
        time.sleep(0.1)
    raise AssertionError(f"{url}: {last} instead of {status}")


@contextlib.contextmanager
def origin(port: int, tmp_path: Path) -> Iterator[None]:
    """A real HTTP origin process on ``port`` until the block ends (stopped by PID)."""
    with (tmp_path / f"origin-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", LOOPBACK, str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )
    try:
        wait_http_ok(f"http://{LOOPBACK}:{port}/", process)
        yield
    finally:
        stop_process(process)


def test_readyz_follows_the_backend_and_the_gateway(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    origin_port, gateway_port, relay_port = free_port(), free_port(), free_port()
    gateway = base_url(gateway_port)
    relay = base_url(relay_port)
    gw_args = gateway_args(key_file, gateway_port, "--backend", f"http://{LOOPBACK}:{origin_port}")
    with ohttp_process(gw_args, gateway + "/healthz", tmp_path / "gw.log") as gw:
        with origin(origin_port, tmp_path):
            assert wait_status(gateway + "/readyz", 200) == b"ready\n"
            with ohttp_process(relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz",
                               tmp_path / "relay.log"):
                assert wait_status(relay + "/readyz", 200) == b"ready\n"
                # Identical bodies on both servers, and HEAD on both routes.
                assert fetch(gateway + "/healthz") == fetch(relay + "/healthz") == (200, b"ok\n")
                for url in (gateway, relay):
                    assert fetch(url + "/healthz", "HEAD") == (200, b"")
                    assert fetch(url + "/readyz", "HEAD") == (200, b"")
        # The origin is gone: the gateway is not ready, but alive.
        assert wait_status(gateway + "/readyz", 503) == b"not ready: backend\n"
        assert fetch(gateway + "/healthz") == (200, b"ok\n")
        assert fetch(gateway + "/readyz", "HEAD") == (503, b"")
        with origin(origin_port, tmp_path):
            wait_status(gateway + "/readyz", 200)
        assert gw.process.poll() is None


def test_relay_readyz_goes_503_and_back_with_its_gateway(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    args = gateway_args(key_file, gateway_port, "--backend", "echo")
    # One relay throughout; its gateway comes, goes and comes back.
    with ohttp_process(
        relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz", tmp_path / "relay.log"
    ) as running:
        assert wait_status(relay + "/readyz", 503).startswith(b"not ready: gateway")
        with ohttp_process(args, gateway + "/healthz", tmp_path / "gw1.log"):
            assert wait_status(relay + "/readyz", 200) == b"ready\n"
        assert wait_status(relay + "/readyz", 503).startswith(b"not ready: gateway")
        assert fetch(relay + "/healthz") == (200, b"ok\n")  # liveness is unaffected
        with ohttp_process(args, gateway + "/healthz", tmp_path / "gw2.log"):
            wait_status(relay + "/readyz", 200)
        assert running.process.poll() is None


async def test_a_check_is_one_line_and_failures_are_named() -> None:
    readiness = Readiness(timeout=0.2)

    async def ok() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionError

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    readiness.add("ok", ok)
    assert await readiness.failing() == []
    readiness.add("store", broken)
    readiness.add("slow", hangs)
    assert await readiness.failing() == ["store", "slow"]
