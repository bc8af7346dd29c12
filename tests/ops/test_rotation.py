"""Key rotation with real processes: a client through the relay keeps working (issue 12, 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.pipeline import KeyDocument
from gateway.rotation import next_rotation
from ohttp.aio.client import Client, Exchange
from ohttp.aio.keyfile import load_key_file
from ohttp.keys import GatewayKey, KeyRing, decode_key_configs
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import REPO, free_port, ohttp_process

ECHO = "https://echo.internal/"


def served(url: str) -> tuple[list[int], str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        ids = [config.key_id for config in decode_key_configs(response.read())]
        return ids, response.headers["Cache-Control"]


def rotate(key_file: Path, overlap: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "ohttp", "keygen", "--rotate", str(key_file),
         "--overlap", str(overlap)],
        check=True, cwd=REPO, capture_output=True,
    )  # fmt: skip


def wait_until_retired(key_file: Path, key_id: int) -> None:
    """Sleep until ``key_id``'s not_after has passed: the wall clock is the condition here."""
    (retired,) = [key for key in load_key_file(key_file) if key.key_id == key_id]
    assert retired.not_after is not None
    time.sleep(max(0.0, retired.not_after - time.time()) + 0.5)


async def test_a_client_through_the_relay_survives_a_short_rotation(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    seen: list[Exchange] = []
    with (
        ohttp_process(gateway_args(key_file, gateway_port, "--backend", "echo"),
                      gateway + "/healthz", tmp_path / "gw.log") as gw,
        ohttp_process(relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz",
                      tmp_path / "relay.log") as running_relay,
    ):
        async with Client(relay + "/", observer=seen.append) as client:  # keys from the mirror
            assert (await client.request("GET", ECHO)).status == 200
            assert served(relay + "/ohttp-keys")[0] == [1]
            rotate(key_file, overlap=2)
            os.kill(gw.pid, signal.SIGHUP)
            wait_until_retired(key_file, 1)
            # The client's cached key 1 is refused (422); the relay refreshed its mirror before
            # passing that on, so the client's one refresh and retry find key 2.
            assert (await client.request("GET", ECHO)).status == 200
            assert (await client.request("GET", ECHO)).status == 200
        async with Client(relay + "/") as fresh:
            assert (await fresh.request("GET", ECHO)).status == 200
        assert running_relay.process.poll() is None and gw.process.poll() is None
    assert [(e.key_id, e.status) for e in seen] == [(1, 200), (1, 422), (2, 200), (2, 200)]
    assert "keys_refreshed" in (tmp_path / "relay.log").read_text()


def test_sighup_refreshes_the_relay_mirror(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    with (
        ohttp_process(gateway_args(key_file, gateway_port, "--backend", "echo"),
                      gateway + "/healthz", tmp_path / "gw.log") as gw,
        ohttp_process(relay_args(relay_port, gateway + WELL_KNOWN), relay + "/healthz",
                      tmp_path / "relay.log") as running_relay,
    ):
        assert served(relay + "/ohttp-keys")[0] == [1]
        rotate(key_file, overlap=120)
        os.kill(gw.pid, signal.SIGHUP)
        for _ in range(100):
            if served(gateway + WELL_KNOWN)[0] == [2]:
                break
            time.sleep(0.05)
        os.kill(running_relay.pid, signal.SIGHUP)  # one worker: a reload, never an exit
        for _ in range(100):
            if served(relay + "/ohttp-keys")[0] == [2]:
                break
            time.sleep(0.05)
        assert served(relay + "/ohttp-keys")[0] == [2]
        assert running_relay.process.poll() is None


def test_max_age_never_outlives_the_listed_keys() -> None:
    now = int(time.time())
    short = GatewayKey.generate(1, not_before=now - 10, not_after=now + 30)
    _, headers = KeyDocument(KeyRing([short])).current()
    assert 0 < int(headers["Cache-Control"].removeprefix("max-age=")) <= 30
    # A ring whose key ends in 10 s: under the 60 s floor of ohttp.keys, still capped.
    ending = GatewayKey.generate(2, not_before=now - 10, not_after=now + 10)
    _, headers = KeyDocument(KeyRing([ending])).current()
    assert int(headers["Cache-Control"].removeprefix("max-age=")) <= 10
    lasting = GatewayKey.generate(3)
    _, headers = KeyDocument(KeyRing([lasting])).current()
    assert headers["Cache-Control"] == "max-age=86400"


def test_the_gateway_rotates_on_its_own_with_an_expiry_metric(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)  # no start time: the first rotation is due at once
    gateway_port, metrics_port = free_port(), free_port()
    gateway = base_url(gateway_port)
    args = gateway_args(key_file, gateway_port, "--backend", "echo", "--key-rotation", "3600",
                        "--key-rotation-overlap", "600",
                        "--metrics-listen", f"127.0.0.1:{metrics_port}")
    with ohttp_process(args, gateway + "/healthz", tmp_path / "gw.log"):
        for _ in range(100):
            if served(gateway + WELL_KNOWN)[0] == [2]:
                break
            time.sleep(0.05)
        ids, cache_control = served(gateway + WELL_KNOWN)
        assert ids == [2]
        max_age = int(cache_control.removeprefix("max-age="))
        # ohttp.keys counts every change to the ring: the retired key 1 ends in 600 s.
        assert 600 - 5 <= max_age <= 600
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
    (line,) = [m for m in metrics.splitlines() if m.startswith("ohttp_gateway_key_expiry_seconds")]
    # key 2 decrypts for every + overlap
    assert 3600 + 600 - 10 <= float(line.split()[-1]) <= 3600 + 600
    keys = load_key_file(key_file)
    assert sorted(key.key_id for key in keys) == [1, 2]
    assert next_rotation(KeyRing(keys), 3600) > time.time() + 3500  # not again for an hour
    events = [json.loads(line)["event"] for line in (tmp_path / "gw.log").read_text().splitlines()
              if line.startswith("{")]
    assert events.count("key_rotated") == 1


def test_sighup_to_a_two_worker_relay_refreshes_every_worker(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gateway_port, relay_port = free_port(), free_port()
    gateway, relay = base_url(gateway_port), base_url(relay_port)
    log = tmp_path / "relay.log"
    with (
        ohttp_process(gateway_args(key_file, gateway_port, "--backend", "echo"),
                      gateway + "/healthz", tmp_path / "gw.log") as gw,
        ohttp_process([*relay_args(relay_port, gateway + WELL_KNOWN), "--workers", "2"],
                      relay + "/healthz", log) as running_relay,
    ):
        for _ in range(200):  # both workers serve (each has installed its SIGHUP handler)
            if log.read_text().count("relay listening") == 2:
                break
            time.sleep(0.05)
        rotate(key_file, overlap=120)
        os.kill(gw.pid, signal.SIGHUP)
        for _ in range(100):
            if served(gateway + WELL_KNOWN)[0] == [2]:
                break
            time.sleep(0.05)
        os.kill(running_relay.pid, signal.SIGHUP)  # the parent passes it to each worker
        for _ in range(200):
            if log.read_text().count('"keys_refreshed"') == 2:
                break
            time.sleep(0.05)
        assert log.read_text().count('"keys_refreshed"') == 2
        assert {tuple(served(relay + "/ohttp-keys")[0]) for _ in range(20)} == {(2,)}
        assert running_relay.process.poll() is None
