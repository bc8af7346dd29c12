"""One /metrics merging every worker, with process metrics and ohttp_build_info (issue 12,
item 8), on real two-worker processes."""

from __future__ import annotations

import glob
import importlib.metadata
import os
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args, write_key_file
from tests.support import LOOPBACK, free_port, ohttp_process

FETCHES = 40


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_for(port: int, name: str, value: float) -> dict[str, float]:
    samples: dict[str, float] = {}
    for _ in range(100):  # workers flush once a second
        samples = scrape(port)
        if samples.get(name) == value:
            return samples
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {value}: {samples.get(name)}")


def fetch_keys(url: str) -> None:
    for _ in range(FETCHES):  # a fresh connection each: SO_REUSEPORT spreads them
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200


def test_both_servers_merge_their_workers(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    gw_port, gw_metrics, relay_port, relay_metrics = (free_port() for _ in range(4))
    gateway, relay = base_url(gw_port), base_url(relay_port)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "ohttp-metrics-*")))
    with ohttp_process([*gateway_args(key_file, gw_port, "--backend", "echo"), "--workers", "2",
                        "--metrics-listen", f"{LOOPBACK}:{gw_metrics}"],
                       gateway + "/healthz", tmp_path / "gw.log"):
        fetch_keys(gateway + WELL_KNOWN)
        # All 40 counted whichever worker answers the scrape (40 on one worker alone would
        # need every fresh connection to land on it).
        for _ in range(5):
            wait_for(gw_metrics, "ohttp_gateway_key_requests_total", FETCHES)
        with ohttp_process([*relay_args(relay_port, gateway + WELL_KNOWN), "--workers", "2",
                            "--metrics-listen", f"{LOOPBACK}:{relay_metrics}"],
                           relay + "/healthz", tmp_path / "relay.log"):
            fetch_keys(relay + "/ohttp-keys")
            for _ in range(5):
                wait_for(relay_metrics, 'ohttp_relay_requests_total{result="keys_served"}',
                         FETCHES)
            version = importlib.metadata.version("ohttp")
            for port in (gw_metrics, relay_metrics):
                samples = scrape(port)
                assert samples[f'ohttp_build_info{{version="{version}"}}'] == 1.0
                assert samples["process_resident_memory_bytes"] > 0
                assert samples["process_cpu_seconds_total"] > 0
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "ohttp-metrics-*")))
    assert after <= before  # the supervisors removed their directories
