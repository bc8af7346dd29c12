"""``ohttp request`` against real processes (issue 12, item 10): --cacert, an untrusted
certificate, a timeout and an unreachable relay each with their own message and exit code,
and a relay URL with a trailing slash."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import trustme

from tests.e2e.conftest import WELL_KNOWN, base_url, gateway_args, write_key_file
from tests.gateway.conftest import http
from tests.support import LOOPBACK, REPO, free_port, ohttp_process, stop_process

ECHO = "https://echo.internal/"


def request(*args: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "ohttp", "request", *args], cwd=REPO,
                          capture_output=True, timeout=60, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@contextlib.contextmanager
def https_relay(tmp_path: Path, gateway: str) -> Iterator[tuple[str, Path]]:
    """``ohttp relay`` over HTTPS with a trustme certificate; (base URL, CA file)."""
    authority = trustme.CA()
    cert = authority.issue_cert(LOOPBACK)
    ca, chain, key = tmp_path / "ca.pem", tmp_path / "relay.pem", tmp_path / "relay.key"
    authority.cert_pem.write_to_path(str(ca))
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    port = free_port()
    args = ["relay", "--listen", f"{LOOPBACK}:{port}", "--gateway", f"echo={gateway}",
            "--tls-cert", str(chain), "--tls-key", str(key)]
    log = tmp_path / "relay.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ohttp", *args], cwd=REPO,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"https://{LOOPBACK}:{port}"
    try:
        context = ssl.create_default_context(cafile=str(ca))
        for _ in range(300):
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if http(base + "/healthz", context=context)[0] == 200:
                    break
            time.sleep(0.05)
        yield base, ca
    finally:
        stop_process(process)


def test_cacert_untrusted_and_trailing_slash(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, key_id=1)
    port = free_port()
    with (
        ohttp_process(gateway_args(key_file, port, "--backend", "echo"),
                      base_url(port) + "/healthz", tmp_path / "gw.log"),
        https_relay(tmp_path, base_url(port) + WELL_KNOWN) as (relay, ca),
    ):
        code, _, err = request("--relay", relay + "/echo", ECHO)
        assert code == 9
        assert err.strip() == "ohttp request: the relay's TLS certificate is not trusted"
        code, out, err = request("--relay", relay + "/echo/", "--cacert", str(ca), ECHO)
        assert code == 0, err
        assert '"method":"GET"' in out
        code, _, err = request("--relay", relay + "/echo", "--cacert", str(tmp_path / "nope"), ECHO)
        assert code == 1 and "nope" in err


def test_timeout_and_unreachable_differ() -> None:
    with socket.socket() as silent:  # accepts (the kernel's backlog), never answers
        silent.bind((LOOPBACK, 0))
        silent.listen()
        relay = f"http://{LOOPBACK}:{silent.getsockname()[1]}/"
        code, _, err = request("--relay", relay, "--timeout", "0.5", ECHO)
    assert (code, err.strip()) == (8, "ohttp request: the relay did not answer in time")
    code, _, err = request("--relay", base_url(free_port()) + "/", ECHO)
    assert (code, err.strip()) == (4, "ohttp request: the relay could not be reached")
