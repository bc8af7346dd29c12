"""Startup diagnostics name what is wrong: the address and errno of a bind, the path of a TLS
file, a key file that others can read."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from ohttp.aio.keyfile import save_key_file
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, REPO, free_port, ohttp_process


def _run(args: list[str]) -> tuple[int, list[dict[str, object]]]:
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", *args],
        check=False, capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return result.returncode, events


def _keys(tmp_path: Path) -> str:
    path = tmp_path / "keys.json"
    save_key_file(path, [GatewayKey.generate(1)])
    return str(path)


def test_a_taken_port_names_the_address_and_the_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        listen = f"{LOOPBACK}:{port}"
        code, events = _run(["gateway", "--keys", _keys(tmp_path), "--listen", listen])
    assert code != 0
    failed = [event for event in events if event["event"] == "listen_failed"]
    assert failed == [failed[0]] and failed[0]["host"] == LOOPBACK
    assert (failed[0]["port"], failed[0]["error"]) == (port, "EADDRINUSE")


def test_a_missing_tls_file_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cert.pem"
    listen = f"{LOOPBACK}:{free_port()}"
    code, events = _run(["relay", "--listen", listen, "--gateway", "http://127.0.0.1:9/",
                         "--tls-cert", str(missing), "--tls-key", str(missing)])
    assert code != 0
    failed = [event for event in events if event["event"] == "startup_failed"]
    assert failed and failed[0]["error"] == "ENOENT" and failed[0]["detail"] == str(missing)


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    Path(keys).chmod(0o644)
    port = free_port()
    listen = ["gateway", "--keys", keys, "--listen", f"{LOOPBACK}:{port}"]
    with ohttp_process(listen, f"http://{LOOPBACK}:{port}/healthz", tmp_path / "gw.log") as gw:
        log = gw.log()
    warnings = [json.loads(line) for line in log.splitlines() if "key_file_permissions" in line]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert f"{keys} has mode 0644" in str(warnings[0]["detail"])
