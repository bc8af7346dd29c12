"""Relay-to-gateway authentication with real processes (issue 12, item 9): the gateway's
--relay-token-file and --client-ca, the relay's --gateway-token and --client-cert/--client-key,
certificates made by trustme."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from ohttp.aio.client import Client, RelayRejected
from ohttp.keys import GatewayKey
from tests.e2e.conftest import WELL_KNOWN, relay_args
from tests.gateway.conftest import http, inner_request, seal, write_keys
from tests.support import LOOPBACK, REPO, free_port, ohttp_process, stop_process

TOKEN = "relay-token-4f0c1b9e"
ECHO = "https://echo.internal/"


@dataclass
class Pki:
    ca: Path
    gateway_chain: Path
    gateway_key: Path
    relay_chain: Path
    relay_key: Path
    authority: trustme.CA


def make_pki(directory: Path) -> Pki:
    authority = trustme.CA()
    gateway = authority.issue_cert(LOOPBACK)
    relay = authority.issue_cert("relay.example")
    files = Pki(directory / "ca.pem", directory / "gw.pem", directory / "gw.key",
                directory / "relay.pem", directory / "relay.key", authority)
    authority.cert_pem.write_to_path(str(files.ca))
    gateway.private_key_and_cert_chain_pem.write_to_path(str(files.gateway_chain))
    gateway.private_key_pem.write_to_path(str(files.gateway_key))
    relay.cert_chain_pems[0].write_to_path(str(files.relay_chain))
    relay.private_key_pem.write_to_path(str(files.relay_key))
    return files


def client_context(pki: Pki, *, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(str(pki.relay_chain), str(pki.relay_key))
    return context


@contextlib.contextmanager
def tls_gateway(tmp_path: Path, pki: Pki, key: GatewayKey) -> Iterator[str]:
    """``ohttp gateway`` with HTTPS, --client-ca and --relay-token-file; yields its base URL."""
    key_file, tokens = tmp_path / "keys.json", tmp_path / "tokens"
    write_keys(key_file, key)
    tokens.write_text(f"# the relay of example.net\nother-token\n{TOKEN}\n")
    tokens.chmod(0o600)
    port = free_port()
    log_path = tmp_path / "gateway.log"
    args = ["gateway", "--keys", str(key_file), "--listen", f"{LOOPBACK}:{port}",
            "--backend", "echo", "--tls-cert", str(pki.gateway_chain),
            "--tls-key", str(pki.gateway_key), "--client-ca", str(pki.ca),
            "--relay-token-file", str(tokens)]
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "ohttp", *args], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=REPO)
    base = f"https://{LOOPBACK}:{port}"
    try:
        context = client_context(pki, with_cert=True)
        for _ in range(300):
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(OSError):
                if http(base + "/healthz", context=context)[0] == 200:
                    break
            time.sleep(0.05)
        yield base
    finally:
        stop_process(process)


def test_the_gateway_wants_the_token_before_it_decrypts(tmp_path: Path) -> None:
    pki, key = make_pki(tmp_path), GatewayKey.generate(1)
    with tls_gateway(tmp_path, pki, key) as base:
        context = client_context(pki, with_cert=True)
        url = base + WELL_KNOWN
        headers = {"Content-Type": "message/ohttp-req"}
        for authorization in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
            body, _ = seal(key.config, inner_request())
            sent = headers if authorization is None else {**headers, "Authorization": authorization}
            status, answer_headers, answer = http(url, body, sent, context)
            assert (status, answer) == (401, b"")  # plain, nothing decrypted or encapsulated
            assert answer_headers["WWW-Authenticate"] == "Bearer"
            assert http(url, None, sent, context)[0] == 401  # the key GET too
        body, _ = seal(key.config, inner_request())
        ok = http(url, body, {**headers, "Authorization": f"bearer {TOKEN}"}, context)
        assert ok[0] == 200 and ok[1]["Content-Type"] == "message/ohttp-res"
        metrics_free = http(base + "/readyz", context=context)
        assert metrics_free[0] == 200  # health and readiness need no token


def test_no_client_certificate_no_tls(tmp_path: Path) -> None:
    pki, key = make_pki(tmp_path), GatewayKey.generate(1)
    with tls_gateway(tmp_path, pki, key) as base:
        with pytest.raises(OSError):  # the handshake (or, TLS 1.3, the first read) fails
            http(base + "/healthz", context=client_context(pki, with_cert=False))
        other = trustme.CA().issue_cert("relay.example")  # a certificate from a stranger CA
        context = client_context(pki, with_cert=False)
        chain, private = tmp_path / "stranger.pem", tmp_path / "stranger.key"
        other.cert_chain_pems[0].write_to_path(str(chain))
        other.private_key_pem.write_to_path(str(private))
        context.load_cert_chain(str(chain), str(private))
        with pytest.raises(OSError):
            http(base + "/healthz", context=context)


async def test_the_relay_authenticates_with_certificate_and_token(tmp_path: Path) -> None:
    pki, key = make_pki(tmp_path), GatewayKey.generate(1)
    with tls_gateway(tmp_path, pki, key) as base:
        relay_port = free_port()
        relay = f"http://{LOOPBACK}:{relay_port}"
        args = [*relay_args(relay_port, base + WELL_KNOWN), "--upstream-ca-file", str(pki.ca),
                "--client-cert", str(pki.relay_chain), "--client-key", str(pki.relay_key)]
        env = {"OHTTP_RELAY_GATEWAY_TOKEN": TOKEN}
        with ohttp_process(args, relay + "/healthz", tmp_path / "relay.log", env=env):
            # The client takes its keys from the relay's mirror: the key GET carries the
            # certificate and the token too.
            async with Client(relay + "/") as client:
                assert (await client.request("GET", ECHO)).status == 200
        # Without the certificate the relay is refused at the TLS layer; it says so.
        args = [*relay_args(relay_port, base + WELL_KNOWN), "--upstream-ca-file", str(pki.ca)]
        with ohttp_process(args, relay + "/healthz", tmp_path / "relay2.log", env=env):
            async with Client(relay + "/", key_config=key.config) as client:
                with pytest.raises(RelayRejected) as raised:
                    await client.request("GET", ECHO)
            assert raised.value.status == 502
        log = (tmp_path / "relay2.log").read_text()
        assert '"event": "upstream_failed"' in log and TOKEN not in log
    assert os.stat(tmp_path / "tokens").st_mode & 0o077 == 0
