"""X-Wing end to end: a key file with X25519 and X-Wing side by side, served through a real
gateway and relay (subprocesses); the client prefers the post-quantum key and says so."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from ohttp.aio._keyfetch import key_mirror_url
from ohttp.keys import KEM, decode_key_configs
from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, relay_args
from tests.support import REPO, free_port, ohttp_process

ECHO = "https://echo.internal/pq"


def _ohttp(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ohttp", *args],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def pq_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The relay URL of an echo gateway keyed with X25519 (id 1) and X-Wing (id 2)."""
    directory = tmp_path_factory.mktemp("pq")
    keys = directory / "keys.json"
    assert _ohttp("keygen", "--out", str(keys)).returncode == 0
    added = _ohttp("keygen", "--add", str(keys), "--kem", "x-wing")
    assert added.returncode == 0, added.stderr
    gateway_port, relay_port = free_port(), free_port()
    with (
        ohttp_process(
            gateway_args(keys, gateway_port, "--backend", "echo"),
            base_url(gateway_port) + "/healthz",
            directory / "gateway.log",
        ),
        ohttp_process(
            relay_args(relay_port, base_url(gateway_port) + WELL_KNOWN),
            base_url(relay_port) + "/healthz",
            directory / "relay.log",
        ),
    ):
        yield base_url(relay_port) + "/"


def test_relay_mirror_serves_both_keys(pq_relay: str) -> None:
    with urllib.request.urlopen(key_mirror_url(pq_relay), timeout=10) as response:
        configs = decode_key_configs(response.read())
    assert [(c.key_id, c.kem, len(c.public_key)) for c in configs] == [
        (1, KEM.X25519, 32),
        (2, KEM.X_WING, 1216),
    ]


def test_client_prefers_x_wing_and_says_so(pq_relay: str) -> None:
    result = _ohttp("request", "--relay", pq_relay, "-v", "-d", "quantum-safe", ECHO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["body_base64"] == "cXVhbnR1bS1zYWZl"
    assert "with key id 2 (X-WING, post-quantum, " in result.stderr.decode(), result.stderr.decode()


def test_client_can_prefer_classical(pq_relay: str) -> None:
    result = _ohttp(
        "request", "--relay", pq_relay, "-v", "--prefer-kem", "classical", "-d", "x", ECHO
    )
    assert result.returncode == 0, result.stderr
    assert "with key id 1 (X25519, " in result.stderr.decode()


def test_chunked_ohttp_with_x_wing(pq_relay: str) -> None:
    result = _ohttp("request", "--relay", pq_relay, "--stream", "-v", "-d", "streamed", ECHO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["body_base64"] == "c3RyZWFtZWQ="
    assert "key id 2 (X-WING, post-quantum" in result.stderr.decode()
