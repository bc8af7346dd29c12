"""Configuration precedence (flags > env > TOML > defaults) and the CLI surface."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest

from relay.cli import add_arguments, config_from_args
from relay.config import ConfigError, GatewayTarget, RelayConfig, load_config

GW = "http://127.0.0.1:8080/.well-known/ohttp-gateway"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_precedence_flags_over_env_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    toml = tmp_path / "relay.toml"
    toml.write_text('listen = "127.0.0.1:9001"\nmax-body-bytes = 2000\n'
                    f'gateway = ["{GW}", "b=https://gw.example/x?y=1"]\n')
    monkeypatch.setenv("OHTTP_RELAY_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("OHTTP_RELAY_RATE_LIMIT", "7")
    monkeypatch.setenv("OHTTP_RELAY_BODY_TIMEOUT", "3.5")
    config = config_from_args(parse(["--config", str(toml), "--body-timeout", "9"]))
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9001)  # TOML
    assert config.max_body_bytes == 1000  # env beats TOML
    assert config.rate_limit == 7  # env beats default
    assert config.body_timeout == 9.0  # flag beats env
    assert config.header_timeout == 10.0  # default
    named = config.gateway("b")
    assert named is not None and named.host_header == "gw.example"
    assert named.target == "/x?y=1" and named.port == 443 and named.tls


def test_defaults_need_a_gateway() -> None:
    with pytest.raises(ConfigError):
        load_config({}, None, environ={})


def test_gateway_target_parts() -> None:
    target = GatewayTarget("", GW)
    assert (target.host, target.port, target.host_header) == ("127.0.0.1", 8080, "127.0.0.1:8080")
    assert target.target == "/.well-known/ohttp-gateway" and not target.tls


@pytest.mark.parametrize("bad", [
    ["--gateway", "ftp://x/"], ["--gateway", "http://u:p@x/"], ["--gateway", GW, "--workers", "0"],
    ["--gateway", f"ohttp-keys={GW}"], ["--gateway", f"a={GW}", "--gateway", f"a={GW}"],
    ["--gateway", GW, "--tls-cert", "c.pem"], ["--gateway", GW, "--listen", "nowhere"],
    ["--gateway", GW, "--max-body-bytes", "lots"], ["--gateway", GW, "--gateway-token", "a b"],
])
def test_invalid_configuration_rejected(bad: list[str]) -> None:
    with pytest.raises(ConfigError):
        config_from_args(parse(bad))


def test_unknown_toml_key_rejected(tmp_path: Path) -> None:
    toml = tmp_path / "relay.toml"
    toml.write_text('[relay]\ngateway = "http://x/"\nlisten_typo = "1"\n')
    with pytest.raises(ConfigError, match="listen_typo"):
        load_config({}, str(toml), environ={})


def test_config_pickles_for_worker_processes() -> None:
    config = RelayConfig(gateways=(GatewayTarget("", GW),), gateway_token="secret-token")
    assert pickle.loads(pickle.dumps(config)) == config
    assert "secret-token" not in repr(config)


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = capsys.readouterr().out
    for flag in ("--listen", "--gateway", "--config", "--workers", "--metrics-listen",
                 "--tls-cert", "--tls-key", "--upstream-ca-file", "--gateway-token",
                 "--client-cert", "--client-key", "--max-body-bytes", "--header-timeout",
                 "--body-timeout", "--max-connections", "--max-in-flight", "--rate-limit"):
        assert flag in text
