"""`ohttp demo` as a subprocess: exit 0, every section, measured numbers, nothing left running."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ohttp.aio.keyfile import save_key_file
from ohttp.cli import demo as _demo
from ohttp.keys import GatewayKey
from tests.support import LOOPBACK, REPO

SECTIONS = (
    "== Setup",
    "== Summary of a French group chat",
    "== Summary of an English group chat",
    "== Streamed summary of the English chat",
    "== Rewrite of a draft",
    "== Who saw what (measured in this run)",
)


def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ohttp", "demo"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    positions = [output.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "language: fr" in output
    assert "language: en" in output
    streamed = output[output.index("== Streamed summary") : output.index("== Rewrite")]
    assert len(re.findall(r"^  \+ *\d+ ms ", streamed, re.MULTILINE)) == 4  # 3 sentences, done
    assert "done (language en" in streamed
    table = " ".join(output[output.index("== Who saw what") :].split())  # undo the wrapping
    relay = re.search(r"relay the client's address \(127\.0\.0\.1:\d+\); 4 requests of "
                      r"(\d+) bytes of ciphertext", table)
    assert relay is not None
    assert int(relay.group(1)) > 0
    assert "no content" in table
    assert "files written 0" in table
    assert "sample text in the logs 0 times" in table
    # Every process the demo started is gone.
    pids = [int(pid) for pid in re.findall(r"pid (\d+)", output)]
    assert len(pids) >= 2
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"process {pid} is still running")


def test_a_service_that_cannot_start_is_reported(tmp_path: Path) -> None:
    # A real gateway asked to listen on a port that is taken exits; the demo names it.
    key_file = tmp_path / "keys.json"
    save_key_file(key_file, [GatewayKey.generate(1)])
    started: list[_demo._Service] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            service = _demo._start(
                "gateway",
                ["gateway", "--keys", str(key_file), "--listen", f"{LOOPBACK}:{port}"],
                port=port, workdir=tmp_path, logs=tmp_path, started=started,
            )
            with pytest.raises(_demo.DemoError, match=f"the gateway exited .* port {port} in use"):
                _demo._wait_healthy(service)
        finally:
            for service in started:
                _demo._stop(service.process)
    assert all(service.process.poll() is not None for service in started)
