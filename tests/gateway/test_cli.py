"""``ohttp gateway``: configuration sources, and real processes (workers, SIGHUP, TLS)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from gateway.cli import add_arguments, config_from_args, run
from gateway.config import GatewayConfig, load_config
from ohttp.aio.keyfile import add_next_key, load_key_file
from ohttp.keys import decode_key_configs
from tests.gateway.conftest import (
    gateway_process,
    http,
    inner_request,
    ohttp_exchange,
    seal,
    write_keys,
)
from tests.support import LOOPBACK, free_port


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


# --- configuration ---------------------------------------------------------------------------


def test_help_documents_every_option() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for option in (
        "--keys", "--listen", "--backend", "--allow-target", "--config", "--workers",
        "--metrics-listen", "--tls-cert", "--tls-key", "--require-date", "--date-window",
        "--max-body", "--max-in-flight", "--backend-timeout", "--header-timeout",
        "--max-connections", "--padding",
    ):  # fmt: skip
        assert option in text
    for action in parser._actions:
        assert action.help, action.dest


def test_defaults() -> None:
    config = load_config({}, environ={})
    assert config == GatewayConfig()
    assert config.backend == "processing"
    assert config.date_window == 60


def test_flags_over_env_over_file(tmp_path: Path) -> None:
    toml = tmp_path / "gateway.toml"
    toml.write_text('max-body = 2000\ndate_window = 30\nallow_target = ["a.example"]\n')
    env = {
        "OHTTP_GATEWAY_MAX_BODY": "3000",
        "OHTTP_GATEWAY_DATE_WINDOW": "20",
        "OHTTP_GATEWAY_WORKERS": "3",
        "OHTTP_GATEWAY_REQUIRE_DATE": "yes",
        "OHTTP_GATEWAY_ALLOW_TARGET": "b.example, c.example",
    }
    config = load_config({"max_body": 1000, "backend": "echo"}, toml, env)
    assert config.max_body == 1000  # flag
    assert config.date_window == 20  # env over file
    assert config.allow_target == ("b.example", "c.example")
    assert load_config({}, toml, {}).date_window == 30  # file over default
    assert config.workers == 3  # env over default
    assert config.require_date is True
    only_env = load_config({}, environ=env)
    assert only_env.allow_target == ("b.example", "c.example")


def test_connection_guard_settings(tmp_path: Path) -> None:
    assert (GatewayConfig().header_timeout, GatewayConfig().max_connections) == (10, 1024)
    toml = tmp_path / "gateway.toml"
    toml.write_text("header-timeout = 4\nmax_connections = 30\n")
    env = {"OHTTP_GATEWAY_HEADER_TIMEOUT": "2.5", "OHTTP_GATEWAY_MAX_CONNECTIONS": "20"}
    assert load_config({}, environ=env).header_timeout == 2.5
    assert load_config({}, environ=env).max_connections == 20
    from_file = load_config({"max_connections": 10}, toml, {})
    assert (from_file.header_timeout, from_file.max_connections) == (4, 10)
    assert load_config({}, toml, env).header_timeout == 2.5  # the environment beats the file
    flags = config_from_args(parse("--header-timeout", "1.5", "--max-connections", "7"))
    assert (flags.header_timeout, flags.max_connections) == (1.5, 7)


def test_gateway_table_and_config_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "gateway.toml"
    toml.write_text('[gateway]\nbackend = "echo"\nmax-in-flight = 7\n')
    monkeypatch.setenv("OHTTP_GATEWAY_CONFIG", str(toml))
    config = config_from_args(parse("--allow-target", "x.example", "--allow-target", "y.example"))
    assert (config.backend, config.max_in_flight) == ("echo", 7)
    assert config.allow_target == ("x.example", "y.example")


@pytest.mark.parametrize(
    "argv",
    [
        ("--date-window", "1"),
        ("--workers", "0"),
        ("--listen", "nowhere"),
        ("--backend", "ftp://x"),
        ("--backend", "http://exa mple"),
        ("--backend", "http://exa%20mple"),
        ("--backend", "http://-x.example"),
        ("--tls-cert", "cert.pem"),
        ("--max-body", "0"),
        ("--header-timeout", "0"),
        ("--max-connections", "0"),
        ("--padding", "random"),
        (),  # no --keys
    ],
)
def test_invalid_settings_exit_2(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = () if not argv else ("--keys", str(tmp_path / "k.json"))
    assert run(parse(*keys, "--backend", "echo", *argv)) == 2
    assert "ohttp gateway:" in capsys.readouterr().err


def test_unknown_file_setting_exits_2(tmp_path: Path) -> None:
    toml = tmp_path / "gateway.toml"
    toml.write_text("max_bodyy = 3\n")
    assert run(parse("--keys", "k.json", "--config", str(toml))) == 2


# --- real processes --------------------------------------------------------------------------


_KEYS_PATH = "/.well-known/ohttp-gateway"


def _keys_url(port: int, scheme: str = "http") -> str:
    return f"{scheme}://{LOOPBACK}:{port}{_KEYS_PATH}"


def _base_args(keys: Path, port: int, metrics_port: int, *extra: str) -> list[str]:
    return [
        "--keys", str(keys), "--listen", f"{LOOPBACK}:{port}", "--backend", "echo",
        "--metrics-listen", f"{LOOPBACK}:{metrics_port}", *extra,
    ]  # fmt: skip


_RELOADED = 'ohttp_gateway_key_reloads_total{outcome="ok"}'


def _metric(port: int, name: str) -> float:
    status, _, body = http(f"http://{LOOPBACK}:{port}/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0  # a labelled series appears on first use


def _wait_until(condition: object, attempts: int = 200) -> None:
    for _ in range(attempts):
        try:
            if callable(condition) and condition():
                return
        except OSError:  # e.g. the other worker is not listening yet
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_two_workers_serve_identical_keys(tmp_path: Path) -> None:
    key = write_keys(tmp_path / "keys.json")
    port, metrics_port = free_port(), free_port()
    health = f"http://{LOOPBACK}:{metrics_port}/metrics"
    args = _base_args(tmp_path / "keys.json", port, metrics_port, "--workers", "2")
    with gateway_process(args, health, tmp_path / "log") as running:
        bodies = {http(_keys_url(port))[2] for _ in range(40)}
        assert len(bodies) == 1
        assert decode_key_configs(bodies.pop()) == [key.config]
        # Fresh connections spread over both workers (SO_REUSEPORT); the one metrics port
        # merges both workers' counts (each flushes at least once a second).
        _wait_until(lambda: _metric(metrics_port, "ohttp_gateway_key_requests_total") == 40)
        for index in range(10):
            inner = ohttp_exchange(_keys_url(port), key.config, inner_request(f"/{index}".encode()))
            assert inner.status == 200
        assert running.process.poll() is None


def test_sighup_rotates_without_dropping_the_old_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = write_keys(path)
    port, metrics_port = free_port(), free_port()
    args = _base_args(path, port, metrics_port, "--workers", "2")
    with gateway_process(args, f"http://{LOOPBACK}:{metrics_port}/metrics", tmp_path / "log") as gw:
        _wait_until(lambda: gw.log().count('"event": "listening"') == 2)  # both handle SIGHUP
        sealed_before = [seal(old.config, inner_request()) for _ in range(6)]
        new = add_next_key(path)
        os.kill(gw.pid, signal.SIGHUP)  # the parent forwards it to every worker
        _wait_until(lambda: _metric(metrics_port, _RELOADED) == 2)  # both workers reloaded
        for _ in range(10):
            assert decode_key_configs(http(_keys_url(port))[2]) == [new.config]
        from ohttp import bhttp

        for body, opener in sealed_before:  # the old key still decrypts until it expires
            status, _, payload = http(_keys_url(port), body, {"Content-Type": "message/ohttp-req"})
            assert status == 200
            assert bhttp.decode_response(opener.open(payload)).status == 200
        assert ohttp_exchange(_keys_url(port), new.config, inner_request()).status == 200
        assert {k.key_id for k in load_key_file(path)} == {old.key_id, new.key_id}
        assert "keys_reloaded" in gw.log()


def test_tls(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert(LOOPBACK)
    cert, private = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.private_key_pem.write_to_path(private)
    certificate.cert_chain_pems[0].write_to_path(cert)
    key = write_keys(tmp_path / "keys.json")
    port, metrics_port = free_port(), free_port()
    tls = ("--tls-cert", str(cert), "--tls-key", str(private))
    args = _base_args(tmp_path / "keys.json", port, metrics_port, *tls)
    with gateway_process(args, f"http://{LOOPBACK}:{metrics_port}/metrics", tmp_path / "log"):
        context = ssl.create_default_context()
        authority.configure_trust(context)
        status, _, body = http(_keys_url(port, "https"), context=context)
        assert status == 200 and decode_key_configs(body) == [key.config]
        inner = ohttp_exchange(_keys_url(port, "https"), key.config, inner_request(), context)
        assert inner.status == 200
        with pytest.raises(OSError):  # plain HTTP is not served on the TLS port
            http(_keys_url(port))


def _raw_exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, read until the gateway closes the connection (5 s at most per read)."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while piece := sock.recv(4096):
            answer += piece
    return answer


def test_connection_guard_and_no_server_header(tmp_path: Path) -> None:
    write_keys(tmp_path / "keys.json")
    port, metrics_port = free_port(), free_port()
    guard = ("--header-timeout", "0.5", "--max-connections", "1")
    args = _base_args(tmp_path / "keys.json", port, metrics_port, *guard)
    with gateway_process(args, f"http://{LOOPBACK}:{metrics_port}/metrics", tmp_path / "log"):
        # A partial head is cut off (slowloris); the 5 s read timeout would raise otherwise.
        assert _raw_exchange(port, f"POST {_KEYS_PATH} HTTP/1.1\r\nHo".encode()) == b""
        with socket.create_connection((LOOPBACK, port), timeout=5):  # takes the one slot
            # Nothing sent: the fixed answer comes at once, before any request is read.
            over_cap = _raw_exchange(port, b"")
        assert over_cap.startswith(b"HTTP/1.1 503 ")
        status, headers, _ = http(_keys_url(port))
        assert status == 200 and "Server" not in headers  # no version disclosure


def test_unreadable_key_file_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("{}")
    assert run(parse("--keys", str(tmp_path / "keys.json"), "--backend", "echo")) == 1
