"""One real stack for the end-to-end tests: two gateways and a relay, as `ohttp` subprocesses.

The relay serves the processing gateway at ``/`` and the echo gateway at ``/echo``. Started once
per session to keep the suite fast; tests that restart or re-key a gateway start their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ohttp.aio.keyfile import save_key_file
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, free_port, ohttp_process

WELL_KNOWN = "/.well-known/ohttp-gateway"


@dataclass(frozen=True)
class Stack:
    relay_url: str  # the processing gateway, at the relay's "/"
    echo_relay_url: str  # the echo gateway, at the relay's "/echo"
    gateway_url: str  # the processing gateway's own key/request URL
    key_file: Path
    logs: tuple[Path, ...]


def base_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def write_key_file(path: Path, key_id: int) -> GatewayKey:
    key = GatewayKey.generate(key_id)
    save_key_file(path, [key], force=True)
    return key


def gateway_args(key_file: Path, port: int, *extra: str) -> list[str]:
    return ["gateway", "--keys", str(key_file), "--listen", f"{LOOPBACK}:{port}", *extra]


def relay_args(port: int, *gateways: str) -> list[str]:
    args = ["relay", "--listen", f"{LOOPBACK}:{port}"]
    for gateway in gateways:
        args += ["--gateway", gateway]
    return args


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("stack")
    key_file = directory / "keys.json"
    write_key_file(key_file, key_id=1)
    processing_port, echo_port, relay_port = free_port(), free_port(), free_port()
    logs = tuple(directory / f"{name}.log" for name in ("processing", "echo", "relay"))
    with (
        ohttp_process(
            gateway_args(key_file, processing_port),
            base_url(processing_port) + "/healthz",
            logs[0],
        ),
        ohttp_process(
            gateway_args(key_file, echo_port, "--backend", "echo"),
            base_url(echo_port) + "/healthz",
            logs[1],
        ),
        ohttp_process(
            relay_args(
                relay_port,
                base_url(processing_port) + WELL_KNOWN,
                "echo=" + base_url(echo_port) + WELL_KNOWN,
            ),
            base_url(relay_port) + "/healthz",
            logs[2],
        ),
    ):
        yield Stack(
            relay_url=base_url(relay_port) + "/",
            echo_relay_url=base_url(relay_port) + "/echo",
            gateway_url=base_url(processing_port) + WELL_KNOWN,
            key_file=key_file,
            logs=logs,
        )
